//! RDS and Aurora IAM database authentication: instead of a password, each new connection
//! gives a token, a SigV4-presigned `rds-db:connect` request for the host, port and user, valid
//! for 15 minutes, signed with credentials from the AWS default chain (environment, profile,
//! web identity, instance metadata). The token is made by `aws-sigv4`, the signer the S3
//! client already builds (`aws-sdk-rds` would add a second SDK crate for one function).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use sqlx::postgres::PgConnectOptions;

use super::PasswordSource;
use crate::error::{Error, Result};

const NAME: &str = "RDS IAM authentication";

/// How long a token admits new connections (RDS's own limit).
const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Makes a token for each new connection to one database endpoint, as one user.
#[derive(Debug)]
pub struct RdsIamAuth {
    host: String,
    port: u16,
    user: String,
    region: String,
    credentials: SharedCredentialsProvider,
    /// A fixed signing time (tests), instead of the clock.
    clock: Option<SystemTime>,
}

impl RdsIamAuth {
    /// For `url`'s host, port and user, signed with the AWS default chain's credentials, in the
    /// default chain's region (`AWS_REGION`, the profile) or else the one the host names
    /// (`<instance>.<id>.<region>.rds.amazonaws.com`).
    pub async fn from_default_chain(url: &str) -> Result<Self> {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let (host, port, user) = endpoint(url)?;
        let region = match shared.region() {
            Some(region) => region.to_string(),
            None => region_of_host(&host).ok_or_else(|| {
                token_error(format!(
                    "no AWS region: set AWS_REGION (the host {host} names none)"
                ))
            })?,
        };
        let credentials = shared.credentials_provider().ok_or_else(|| {
            token_error("no AWS credentials provider (the default chain found none)".into())
        })?;
        Ok(Self {
            host,
            port,
            user,
            region,
            credentials,
            clock: None,
        })
    }

    /// With fixed `credentials` and signing time `clock`: every token is the same (tests).
    pub fn fixed(
        url: &str,
        region: &str,
        credentials: Credentials,
        clock: SystemTime,
    ) -> Result<Self> {
        let (host, port, user) = endpoint(url)?;
        Ok(Self {
            host,
            port,
            user,
            region: region.to_string(),
            credentials: SharedCredentialsProvider::new(credentials),
            clock: Some(clock),
        })
    }
}

impl PasswordSource for RdsIamAuth {
    fn name(&self) -> &'static str {
        NAME
    }

    fn password(&self) -> crate::sink::BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            let credentials = self
                .credentials
                .provide_credentials()
                .await
                .map_err(|e| token_error(format!("no AWS credentials: {e}")))?;
            let time = self.clock.unwrap_or_else(SystemTime::now);
            token(
                (&self.host, self.port, &self.user),
                &self.region,
                &credentials,
                time,
            )
        })
    }
}

/// The token for `user` at `host:port`, signed at `time`: the presigned URL of
/// `GET https://host:port/?Action=connect&DBUser=user` for service `rds-db`, without its
/// scheme, as AWS's SDKs make it.
pub fn token(
    (host, port, user): (&str, u16, &str),
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<String> {
    let mut settings = SigningSettings::default();
    settings.expires_in = Some(TOKEN_LIFETIME);
    settings.signature_location = SignatureLocation::QueryParams;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds-db")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| token_error(format!("cannot sign: {e}")))?
        .into();
    let query = format!("Action=connect&DBUser={}", super::percent_encode(user));
    let url = format!("https://{host}:{port}/?{query}");
    let request = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| token_error(format!("cannot sign: {e}")))?;
    let (instructions, _signature) = aws_sigv4::http_request::sign(request, &params)
        .map_err(|e| token_error(format!("cannot sign: {e}")))?
        .into_parts();
    let mut token = format!("{host}:{port}/?{query}");
    for (name, value) in instructions.params() {
        token.push('&');
        token.push_str(name);
        token.push('=');
        token.push_str(&super::percent_encode(value));
    }
    Ok(token)
}

/// Host, port and user of a PostgreSQL URL.
fn endpoint(url: &str) -> Result<(String, u16, String)> {
    let options =
        <PgConnectOptions as std::str::FromStr>::from_str(url).map_err(|e| Error::Connect {
            url: super::redact_url(url),
            source: e,
        })?;
    let user = options.get_username().to_string();
    if user.is_empty() {
        return Err(token_error("the database URL names no user".into()));
    }
    Ok((options.get_host().to_string(), options.get_port(), user))
}

/// `x.y.<region>.rds.amazonaws.com` (or `.amazonaws.com.cn`) -> `<region>`.
fn region_of_host(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    let rds = labels.iter().position(|l| *l == "rds")?;
    (rds >= 1 && labels.get(rds + 1) == Some(&"amazonaws")).then(|| labels[rds - 1].to_string())
}

fn token_error(reason: String) -> Error {
    Error::Token { with: NAME, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_the_presigned_connect_request_without_its_scheme() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret/key+x", None, None, "test");
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let made = token(
            ("db.abc.eu-west-1.rds.amazonaws.com", 5432, "etl reader"),
            "eu-west-1",
            &credentials,
            time,
        )
        .expect("token");
        assert!(
            made.starts_with(
                "db.abc.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=etl%20reader&\
                 X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260101%2F\
                 eu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&"
            ),
            "{made}"
        );
        assert!(!made.contains("secret"), "{made}");
        let again = token(
            ("db.abc.eu-west-1.rds.amazonaws.com", 5432, "etl reader"),
            "eu-west-1",
            &credentials,
            time,
        )
        .expect("token");
        assert_eq!(made, again, "same inputs, same token");
        assert_eq!(
            region_of_host("db.abc.eu-west-1.rds.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of_host("localhost"), None);
    }
}
