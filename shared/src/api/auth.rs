//! Sign-in, setup, users and stream tickets.

use crate::secret::SecretString;
use serde::{Deserialize, Serialize};

/// `GET /api/auth/setup/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupStatus {
    /// True once the first administrator exists; setup is then closed for good.
    pub initialized: bool,
}

/// `POST /api/auth/setup`: creates the first administrator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupRequest {
    pub username: String,
    pub password: SecretString,
    /// Defaults to the username.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `POST /api/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub username: String,
    pub password: SecretString,
}

/// What setup and login return: a bearer token for `Authorization: Bearer …` and the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthPayload {
    pub token: SecretString,
    pub expires_at: String,
    pub user: UserOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A user as the API shows it. Never carries the password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserOutput {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub created_at: String,
    pub password_changed_at: String,
}

/// `POST /api/auth/logout`: the session behind the token is revoked at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedOut {
    pub logged_out: bool,
}

/// `PUT /api/auth/password`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    pub old_password: SecretString,
    pub new_password: SecretString,
}

/// The session that made the change stays valid; every other session of the user is revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChanged {
    pub changed: bool,
    pub revoked_sessions: u32,
}

/// `POST /api/auth/stream-ticket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamTicketRequest {
    /// The path the ticket opens (one GET), e.g. `/api/backup/records/7/logs/stream`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamTicket {
    /// Pass as `?ticket=`.
    pub ticket: String,
    pub expires_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn setup_request_reads_camel_case_and_defaults_display_name() {
        let req: SetupRequest =
            serde_json::from_value(json!({"username": "admin", "password": "correct horse"}))
                .expect("parse");
        assert_eq!(req.username, "admin");
        assert_eq!(req.display_name, None);
        let req: SetupRequest = serde_json::from_value(
            json!({"username": "admin", "password": "x", "displayName": "Ada"}),
        )
        .expect("parse");
        assert_eq!(req.display_name.as_deref(), Some("Ada"));
    }

    #[test]
    fn missing_and_mistyped_fields_are_errors() {
        assert!(serde_json::from_value::<LoginRequest>(json!({"username": "a"})).is_err());
        assert!(
            serde_json::from_value::<LoginRequest>(json!({"username": 5, "password": "x"}))
                .is_err()
        );
    }

    #[test]
    fn user_output_is_camel_case_without_secrets() {
        let user = UserOutput {
            id: 1,
            username: "admin".into(),
            display_name: "Admin".into(),
            role: Role::Admin,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            password_changed_at: "2026-01-01T00:00:00.000Z".into(),
        };
        let v = serde_json::to_value(&user).expect("json");
        assert_eq!(v["displayName"], "Admin");
        assert_eq!(v["role"], "admin");
        let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
        assert!(keys.iter().all(|k| !k.to_lowercase().contains("hash")));
    }

    #[test]
    fn role_text_round_trips() {
        for role in [Role::Admin, Role::Operator, Role::Viewer] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
