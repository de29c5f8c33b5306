//! Every route in one table. A path that exists with another method answers 405 with `Allow`; a
//! path that does not exist answers 404 `NOT_FOUND`. Both in the envelope, never as HTML.

use crate::api::{self, Ctx};
use crate::error::ApiError;
use stowage_shared::ErrorCode;
use stowage_shared::api::routes;
use worker::{Method, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Health,
    Ready,
    SetupStatus,
    Setup,
    Login,
    Logout,
    Profile,
    Password,
}

const ROUTES: &[(Method, &str, Route)] = &[
    (Method::Get, routes::HEALTH, Route::Health),
    (Method::Get, routes::HEALTH_READY, Route::Ready),
    (Method::Get, routes::AUTH_SETUP_STATUS, Route::SetupStatus),
    (Method::Post, routes::AUTH_SETUP, Route::Setup),
    (Method::Post, routes::AUTH_LOGIN, Route::Login),
    (Method::Post, routes::AUTH_LOGOUT, Route::Logout),
    (Method::Get, routes::AUTH_PROFILE, Route::Profile),
    (Method::Put, routes::AUTH_PASSWORD, Route::Password),
];

pub async fn handle(ctx: Ctx<'_>) -> Response {
    let path = ctx.req.path();
    let method = ctx.req.method();
    let result = match resolve(&method, &path) {
        Ok(route) => dispatch(route, ctx).await,
        Err(err) => Err(err),
    };
    result.unwrap_or_else(ApiError::into_response)
}

async fn dispatch(route: Route, ctx: Ctx<'_>) -> Result<Response, ApiError> {
    match route {
        Route::Health => api::health::get(ctx).await,
        Route::Ready => api::health::ready(ctx).await,
        Route::SetupStatus => api::auth::setup_status(ctx).await,
        Route::Setup => api::auth::setup(ctx).await,
        Route::Login => api::auth::login(ctx).await,
        Route::Logout => api::auth::logout(ctx).await,
        Route::Profile => api::auth::profile(ctx).await,
        Route::Password => api::auth::change_password(ctx).await,
    }
}

fn resolve(method: &Method, path: &str) -> Result<Route, ApiError> {
    // `/api/health/` and `/api/health` are the same resource.
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
    let mut allowed = Vec::new();
    for (m, pattern, route) in ROUTES {
        if *pattern == path {
            if m == method {
                return Ok(*route);
            }
            allowed.push(m.to_string());
        }
    }
    if allowed.is_empty() {
        Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no API route at {path}"),
        ))
    } else {
        Err(ApiError::MethodNotAllowed {
            allow: allowed.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_routes_and_trailing_slashes() {
        assert_eq!(
            resolve(&Method::Get, "/api/health").ok(),
            Some(Route::Health)
        );
        assert_eq!(
            resolve(&Method::Get, "/api/health/").ok(),
            Some(Route::Health)
        );
        assert_eq!(
            resolve(&Method::Put, "/api/auth/password").ok(),
            Some(Route::Password)
        );
    }

    #[test]
    fn unknown_path_is_not_found_and_wrong_method_lists_allowed() {
        let err = resolve(&Method::Get, "/api/nope").expect_err("404");
        assert_eq!(err.code(), ErrorCode::NotFound);
        let err = resolve(&Method::Delete, "/api/auth/login").expect_err("405");
        assert_eq!(err.code(), ErrorCode::MethodNotAllowed);
        assert!(matches!(err, ApiError::MethodNotAllowed { ref allow } if allow == "POST"));
    }

    #[test]
    fn every_route_is_listed_once() {
        for (i, (m, p, _)) in ROUTES.iter().enumerate() {
            assert!(p.starts_with("/api/"), "{p}");
            assert!(
                !ROUTES[i + 1..].iter().any(|(m2, p2, _)| m2 == m && p2 == p),
                "{m} {p} twice"
            );
        }
    }
}
