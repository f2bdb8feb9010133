//! Logging in (`docs/clients.md §3`): a user with the code the server sent
//! (signing up when the number is new), a bot with its token, and Telegram's test numbers
//! `99966XYYYY`, whose code is `XXXXX`.

use tl::{enums, functions, types};

use crate::{Client, ClientError};

/// The API id mtcall's client introduces itself with (servers of Telegram's API want one).
const API_ID: i32 = 1;
const API_HASH: &str = "mtcall";

fn unexpected(what: &str) -> ClientError {
    ClientError::Rpc {
        code: 0,
        message: format!("unexpected answer: {what}"),
    }
}

impl Client {
    /// `auth.sendCode`: asks for a login code; returns the `phone_code_hash` to sign in with.
    pub async fn send_code(&mut self, phone: &str) -> Result<String, ClientError> {
        let sent = self
            .call(&functions::auth::SendCode {
                phone_number: phone.into(),
                api_id: API_ID,
                api_hash: API_HASH.into(),
                settings: types::CodeSettings::default().into(),
            })
            .await?;
        match sent {
            enums::auth::SentCode::SentCode(s) => Ok(s.phone_code_hash),
            _ => Err(unexpected("auth.sentCodeSuccess without a code")),
        }
    }

    /// `auth.signIn` with the code, then `auth.signUp` as `first_name` if the number is new.
    pub async fn sign_in(
        &mut self,
        phone: &str,
        phone_code_hash: &str,
        code: &str,
        first_name: &str,
    ) -> Result<enums::User, ClientError> {
        let signed = self
            .call(&functions::auth::SignIn {
                phone_number: phone.into(),
                phone_code_hash: phone_code_hash.into(),
                phone_code: Some(code.into()),
                email_verification: None,
            })
            .await?;
        let signed = match signed {
            enums::auth::Authorization::SignUpRequired(_) => {
                self.call(&functions::auth::SignUp {
                    no_joined_notifications: false,
                    phone_number: phone.into(),
                    phone_code_hash: phone_code_hash.into(),
                    first_name: first_name.into(),
                    last_name: String::new(),
                })
                .await?
            }
            a => a,
        };
        match signed {
            enums::auth::Authorization::Authorization(a) => Ok(a.user),
            enums::auth::Authorization::SignUpRequired(_) => {
                Err(unexpected("sign-up did not authorize"))
            }
        }
    }

    /// Signs in (or up, as `first_name`) with a number of Telegram's test form `99966XYYYY`,
    /// whose code is `XXXXX`.
    pub async fn login(
        &mut self,
        phone: &str,
        first_name: &str,
    ) -> Result<enums::User, ClientError> {
        let digit = phone.as_bytes().get(5).copied().unwrap_or(b'0') as char;
        let code: String = std::iter::repeat_n(digit, 5).collect();
        let hash = self.send_code(phone).await?;
        self.sign_in(phone, &hash, &code, first_name).await
    }

    /// `auth.importBotAuthorization`: logs in as the bot whose token is `ID:SECRET`.
    pub async fn login_bot(&mut self, token: &str) -> Result<enums::User, ClientError> {
        let auth = self
            .call(&functions::auth::ImportBotAuthorization {
                flags: 0,
                api_id: API_ID,
                api_hash: API_HASH.into(),
                bot_auth_token: token.into(),
            })
            .await?;
        match auth {
            enums::auth::Authorization::Authorization(a) => Ok(a.user),
            enums::auth::Authorization::SignUpRequired(_) => {
                Err(unexpected("a bot cannot sign up"))
            }
        }
    }
}
