//! Parse, don't validate: raw request fields become these types exactly once, at the API boundary.
//! Everything behind the boundary takes the validated types, so it cannot see a bad value.

use crate::api::{ChangePasswordRequest, LoginRequest, SetupRequest};
use crate::secret::SecretString;
use std::fmt;

/// Which field was wrong and why, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

pub const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=64;
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;
pub const DISPLAY_NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=128;

/// 3–64 characters from `A–Z a–z 0–9 . _ - @`. Compared case-insensitively by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        let len = value.chars().count();
        if !USERNAME_CHARS.contains(&len) {
            return Err(FieldError::new(
                "username",
                format!("must be 3 to 64 characters (got {len})"),
            ));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
        {
            return Err(FieldError::new(
                "username",
                format!("may only contain letters, digits and . _ - @ (found {bad:?})"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the policy: 8–128 characters, not only whitespace.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(field: &'static str, raw: &SecretString) -> Result<Self, FieldError> {
        let value = raw.expose();
        let len = value.chars().count();
        if !PASSWORD_CHARS.contains(&len) {
            return Err(FieldError::new(
                field,
                format!("must be 8 to 128 characters (got {len})"),
            ));
        }
        if value.trim().is_empty() {
            return Err(FieldError::new(field, "must not be only whitespace"));
        }
        if value.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(raw.clone()))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// A resource's name (a task, a storage target, a channel): trimmed, 1 to `max` characters, no
/// control characters. Each resource keeps its own limit (the API's contract); the rule is one.
pub fn name(raw: &str, max: usize) -> Result<String, FieldError> {
    let name = raw.trim();
    let len = name.chars().count();
    if !(1..=max).contains(&len) || name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name",
            format!("must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(name.to_owned())
}

/// 1–128 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        let len = value.chars().count();
        if !DISPLAY_NAME_CHARS.contains(&len) {
            return Err(FieldError::new(
                "displayName",
                format!("must be 1 to 128 characters (got {len})"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(FieldError::new(
                "displayName",
                "must not contain control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute path on a node, as the agent will read it: starts with `/`, at most 4096 bytes, no
/// NUL. Returned unchanged otherwise (the agent's file system decides what exists).
pub fn absolute_path(raw: &str) -> Result<String, FieldError> {
    if !raw.starts_with('/') {
        return Err(FieldError::new(
            "path",
            "must be an absolute path (start with /)",
        ));
    }
    if raw.len() > 4096 {
        return Err(FieldError::new("path", "must be at most 4096 bytes"));
    }
    if raw.contains('\0') {
        return Err(FieldError::new("path", "must not contain NUL"));
    }
    Ok(raw.to_owned())
}

/// A setup request that passed every check.
#[derive(Debug, Clone)]
pub struct ValidSetup {
    pub username: Username,
    pub password: Password,
    pub display_name: DisplayName,
}

impl SetupRequest {
    pub fn validate(&self) -> Result<ValidSetup, FieldError> {
        let username = Username::parse(&self.username)?;
        let password = Password::parse("password", &self.password)?;
        if password
            .secret()
            .expose()
            .eq_ignore_ascii_case(username.as_str())
        {
            return Err(FieldError::new(
                "password",
                "must not be the same as the username",
            ));
        }
        let display_name =
            DisplayName::parse(self.display_name.as_deref().unwrap_or(username.as_str()))?;
        Ok(ValidSetup {
            username,
            password,
            display_name,
        })
    }
}

/// A login request with plausible fields. Only shape is checked here: a login must not tell which
/// usernames exist, so the policy checks of setup are not repeated.
#[derive(Debug, Clone)]
pub struct ValidLogin {
    pub username: String,
    pub password: SecretString,
}

impl LoginRequest {
    pub fn validate(&self) -> Result<ValidLogin, FieldError> {
        let username = self.username.trim();
        if username.is_empty() || username.chars().count() > *USERNAME_CHARS.end() {
            return Err(FieldError::new("username", "must be 1 to 64 characters"));
        }
        let len = self.password.expose().chars().count();
        if len == 0 || len > *PASSWORD_CHARS.end() {
            return Err(FieldError::new("password", "must be 1 to 128 characters"));
        }
        Ok(ValidLogin {
            username: username.to_owned(),
            password: self.password.clone(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct ValidPasswordChange {
    pub old_password: SecretString,
    pub new_password: Password,
}

impl ChangePasswordRequest {
    pub fn validate(&self) -> Result<ValidPasswordChange, FieldError> {
        if self.old_password.expose().is_empty() {
            return Err(FieldError::new("oldPassword", "is required"));
        }
        let new_password = Password::parse("newPassword", &self.new_password)?;
        if new_password.secret() == &self.old_password {
            return Err(FieldError::new(
                "newPassword",
                "must differ from the old password",
            ));
        }
        Ok(ValidPasswordChange {
            old_password: self.old_password.clone(),
            new_password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("admin", Ok("admin")),
            ("  ops.team_1@site-a ", Ok("ops.team_1@site-a")),
            ("ab", Err("must be 3 to 64 characters (got 2)")),
            (&"x".repeat(65), Err("must be 3 to 64 characters (got 65)")),
            (
                "bad name",
                Err("may only contain letters, digits and . _ - @ (found ' ')"),
            ),
            (
                "émile",
                Err("may only contain letters, digits and . _ - @ (found 'é')"),
            ),
        ];
        for (raw, want) in cases {
            let got = Username::parse(raw);
            match want {
                Ok(v) => assert_eq!(got.expect("valid").as_str(), *v, "{raw:?}"),
                Err(reason) => {
                    let err = got.expect_err("invalid");
                    assert_eq!(err.field, "username");
                    assert_eq!(err.reason, *reason, "{raw:?}");
                }
            }
        }
    }

    #[test]
    fn passwords() {
        let ok = [
            "12345678",
            "correct horse battery staple",
            &"p".repeat(128),
            "pässwörd",
        ];
        for raw in ok {
            assert!(Password::parse("password", &raw.into()).is_ok(), "{raw:?}");
        }
        let bad = ["1234567", &"p".repeat(129), "        ", "abc\u{0}defgh"];
        for raw in bad {
            let err = Password::parse("password", &raw.into()).expect_err("invalid");
            assert_eq!(err.field, "password");
        }
    }

    #[test]
    fn password_error_never_echoes_the_password() {
        let err = Password::parse("password", &"short".into()).expect_err("invalid");
        assert!(!err.to_string().contains("short"));
    }

    #[test]
    fn absolute_paths() {
        assert_eq!(absolute_path("/srv/data").expect("ok"), "/srv/data");
        assert!(absolute_path("srv").is_err());
        assert!(absolute_path("").is_err());
        assert!(absolute_path("/a\0b").is_err());
        assert!(absolute_path(&format!("/{}", "a".repeat(4096))).is_err());
    }

    #[test]
    fn display_names() {
        assert_eq!(DisplayName::parse(" Ada ").expect("ok").as_str(), "Ada");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"d".repeat(129)).is_err());
        assert!(DisplayName::parse("tab\there").is_err());
    }

    #[test]
    fn setup_defaults_display_name_and_rejects_password_equal_to_username() {
        let req = SetupRequest {
            username: "operator".into(),
            password: "long enough password".into(),
            display_name: None,
        };
        assert_eq!(
            req.validate().expect("valid").display_name.as_str(),
            "operator"
        );
        let req = SetupRequest {
            username: "operator1".into(),
            password: "OPERATOR1".into(),
            display_name: None,
        };
        assert_eq!(req.validate().expect_err("invalid").field, "password");
    }

    #[test]
    fn login_checks_shape_only() {
        let ok = LoginRequest {
            username: "ab".into(),
            password: "x".into(),
        };
        assert!(
            ok.validate().is_ok(),
            "short values must reach the credential check"
        );
        let empty = LoginRequest {
            username: " ".into(),
            password: "x".into(),
        };
        assert_eq!(empty.validate().expect_err("invalid").field, "username");
        let no_password = LoginRequest {
            username: "admin".into(),
            password: "".into(),
        };
        assert_eq!(
            no_password.validate().expect_err("invalid").field,
            "password"
        );
    }

    #[test]
    fn password_change_rules() {
        let same = ChangePasswordRequest {
            old_password: "old password 1".into(),
            new_password: "old password 1".into(),
        };
        assert_eq!(same.validate().expect_err("invalid").field, "newPassword");
        let weak = ChangePasswordRequest {
            old_password: "old password 1".into(),
            new_password: "short".into(),
        };
        assert_eq!(weak.validate().expect_err("invalid").field, "newPassword");
        let missing_old = ChangePasswordRequest {
            old_password: "".into(),
            new_password: "new password 1".into(),
        };
        assert_eq!(
            missing_old.validate().expect_err("invalid").field,
            "oldPassword"
        );
    }
}
