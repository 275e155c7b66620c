//! Password hashing (argon2id), policy and one-time passwords.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Hashes a password into a PHC string (argon2id, default parameters). CPU-heavy: call from a
/// blocking task.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 hashing with a valid salt").to_string()
}

/// Verifies `password` against a stored PHC string. CPU-heavy: call from a blocking task.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash of nothing anyone knows, verified against when the email is unknown, so both paths
/// take the same time.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&crate::config::random_token(32)))
}

/// Password rules: 10 to 128 characters with a lower-case letter, an upper-case letter and a digit.
pub fn check_policy(password: &str) -> Result<(), &'static str> {
    let len = password.chars().count();
    if !(10..=128).contains(&len) {
        return Err("a password has 10 to 128 characters");
    }
    let has = |f: fn(char) -> bool| password.chars().any(f);
    if !(has(char::is_lowercase) && has(char::is_uppercase) && has(|c| c.is_ascii_digit())) {
        return Err("a password needs a lower-case letter, an upper-case letter and a digit");
    }
    Ok(())
}

/// A random one-time password that satisfies the policy.
pub fn one_time() -> String {
    loop {
        let p = crate::config::random_token(20);
        if check_policy(&p).is_ok() {
            return p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("Correct-Horse-42");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Correct-Horse-42", &h));
        assert!(!verify("correct-horse-42", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn policy_and_one_time_passwords() {
        assert!(check_policy("short1A").is_err());
        assert!(check_policy("alllowercase123").is_err());
        assert!(check_policy("Good-Password-1").is_ok());
        assert!(check_policy(&one_time()).is_ok());
    }
}
