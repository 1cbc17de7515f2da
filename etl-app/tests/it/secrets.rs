//! The database password as a deployment gives it: in a mounted file, or in a URL from one,
//! against a server that checks it (scram-sha-256, as managed databases do). No secret ever
//! reaches the output; one written on the command line gets a warning.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{etl_app, out_dir, text};

/// Characters a URL must escape, so that the password is carried, not parsed.
const PASSWORD: &str = "s3cr:t/p@ss%word";

/// A database with the demo's tables on the password-checking server, readable by role
/// `etl_reader` with [`PASSWORD`]; the URL without the password.
fn reader_database() -> String {
    let server = etl_tests::postgres::password_server().expect("password server");
    let name = format!("secrets_{}", etl_tests::unique());
    etl_tests::postgres::psql(&server.url, &format!("CREATE DATABASE {name}")).expect("create");
    let admin = etl_tests::with_database(&server.url, &name);
    let demo = etl_tests::workspace_root().join("xtask/sql/demo.sql");
    etl_tests::postgres::psql_file(&admin, &demo, &[]).expect("demo tables");
    let role = format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'etl_reader') THEN \
         CREATE ROLE etl_reader LOGIN PASSWORD '{PASSWORD}'; END IF; END $$; \
         GRANT pg_read_all_data TO etl_reader"
    );
    etl_tests::postgres::psql(&admin, &role).expect("role");
    admin.replacen("postgres@", "etl_reader@", 1)
}

fn secret_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write secret");
    path
}

fn assert_no_secret(output: &Output) {
    let message = text(output);
    assert!(!message.contains(PASSWORD), "{message}");
    assert!(!message.contains("s3cr"), "{message}");
}

#[test]
fn passwords_come_from_files_and_never_reach_the_output() {
    let url = reader_database();
    let out = out_dir("secrets");
    let secrets = out.join("secrets");

    // Without the password, the server refuses the role: the check is real.
    let refused = etl_app()
        .args(["run", "--tables", "notes", "--output"])
        .arg(out.join("none"))
        .env("DATABASE_URL", &url)
        .env("PGPASSFILE", "/nonexistent")
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));

    // The password from a file, with the newline `echo` leaves.
    let password_file = secret_file(&secrets, "password", &format!("{PASSWORD}\n"));
    let from_file = etl_app()
        .args(["run", "--tables", "notes,currencies", "--output"])
        .arg(out.join("password-file"))
        .env("DATABASE_URL", &url)
        .env("DATABASE_PASSWORD_FILE", &password_file)
        .output()
        .expect("run");
    assert!(from_file.status.success(), "{}", text(&from_file));
    assert_no_secret(&from_file);
    assert!(out.join("password-file/notes/_manifest.json").is_file());

    // The whole URL from a file (a Kubernetes secret mounted as a file), password escaped.
    let escaped: String = PASSWORD
        .bytes()
        .map(|b| match b {
            b':' | b'/' | b'@' | b'%' => format!("%{b:02X}"),
            _ => char::from(b).to_string(),
        })
        .collect();
    let with_password = url.replacen("etl_reader@", &format!("etl_reader:{escaped}@"), 1);
    let url_file = secret_file(&secrets, "url", &format!("{with_password}\r\n"));
    let from_url_file = etl_app()
        .args(["check", "--tables", "notes", "--database-url-file"])
        .arg(&url_file)
        .output()
        .expect("check");
    assert!(from_url_file.status.success(), "{}", text(&from_url_file));
    assert_no_secret(&from_url_file);

    // A wrong password: a run-time failure that names the cause, not the password.
    let wrong = secret_file(&secrets, "wrong", "not-it-s3cr\n");
    let failed = etl_app()
        .args(["check", "--database-password-file"])
        .arg(&wrong)
        .env("DATABASE_URL", &url)
        .output()
        .expect("check");
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(text(&failed).contains("password"), "{}", text(&failed));
    assert!(!text(&failed).contains("not-it"), "{}", text(&failed));

    // Two passwords, or two URLs, are a usage error before any connection.
    let both = etl_app()
        .args(["check", "--database-password-file"])
        .arg(&password_file)
        .env("DATABASE_URL", &with_password)
        .output()
        .expect("check");
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
    assert_no_secret(&both);
    let two_urls = etl_app()
        .args(["check", "--database-url-file"])
        .arg(&url_file)
        .env("DATABASE_URL", &url)
        .output()
        .expect("check");
    assert_eq!(two_urls.status.code(), Some(2), "{}", text(&two_urls));

    // On the command line it works, with a warning that others can read it.
    let visible = etl_app()
        .args([
            "check",
            "--tables",
            "notes",
            "--database-url",
            &with_password,
        ])
        .output()
        .expect("check");
    assert!(visible.status.success(), "{}", text(&visible));
    assert!(
        text(&visible).contains("visible to other processes"),
        "{}",
        text(&visible)
    );
    assert_no_secret(&visible);
}

/// An RDS IAM token is the password PostgreSQL checks: with fixed credentials and a fixed
/// clock every token is the same, so a role whose password is that token admits exactly the
/// connections that present it, through the engine's own connection path (the pool, the
/// snapshot, the ranges' connections, renewed as they open). A token signed at another time
/// is refused with an error that names IAM authentication and shows no token.
#[tokio::test(flavor = "multi_thread")]
async fn an_rds_iam_token_is_what_each_connection_presents() {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use aws_credential_types::Credentials;
    use etl_runtime::source::iam::RdsIamAuth;
    use etl_runtime::source::{PasswordSource, SourceOptions};
    use etl_runtime::{LocalDirSink, PgSource};

    let server = etl_tests::postgres::password_server().expect("password server");
    let name = format!("iam_{}", etl_tests::unique());
    etl_tests::postgres::psql(&server.url, &format!("CREATE DATABASE {name}")).expect("create");
    let admin = etl_tests::with_database(&server.url, &name);
    etl_tests::postgres::psql(
        &admin,
        "CREATE TABLE iam_notes (id bigint PRIMARY KEY, body text NOT NULL); \
         INSERT INTO iam_notes SELECT i, md5(i::text) FROM generate_series(1, 20000) i; \
         ANALYZE iam_notes",
    )
    .expect("table");
    let url = admin.replacen("postgres@", "etl_iam@", 1);
    let credentials = || {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-token/+=".into()),
            None,
            "test",
        )
    };
    let signed_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let auth = RdsIamAuth::fixed(&url, "eu-west-1", credentials(), signed_at).expect("auth");
    let token = auth.password().await.expect("token");
    assert!(token.contains("X-Amz-Signature="), "{token}");
    etl_tests::postgres::psql(
        &admin,
        &format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'etl_iam') THEN \
             CREATE ROLE etl_iam LOGIN; END IF; END $$; \
             ALTER ROLE etl_iam PASSWORD '{token}'; GRANT pg_read_all_data TO etl_iam"
        ),
    )
    .expect("role");

    let options = SourceOptions {
        max_connections: 3,
        password: Some(Arc::new(auth)),
        ..SourceOptions::default()
    };
    let mut source = PgSource::connect(&url, &options).await.expect("connect");
    source.export_snapshot().await.expect("snapshot");
    let out = out_dir("rds_iam");
    let sink = LocalDirSink::new(&out, "iam").expect("sink");
    let export = etl_runtime::run::export::ExportOptions {
        read: etl_runtime::source::ranges::ReadOptions {
            parallelism: etl_runtime::source::ranges::ReadParallelism::Connections(2),
            range_pages: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let report = etl_runtime::export_table::<IamNote>(&source, &sink, &export)
        .await
        .expect("export");
    assert_eq!(report.rows, 20_000);
    assert_eq!(report.read.connections, 2, "{:?}", report.read);
    source.close().await;

    let later = RdsIamAuth::fixed(
        &url,
        "eu-west-1",
        credentials(),
        signed_at + Duration::from_secs(60),
    )
    .expect("auth");
    let refused = PgSource::connect(
        &url,
        &SourceOptions {
            password: Some(Arc::new(later)),
            ..SourceOptions::default()
        },
    )
    .await
    .err()
    .expect("a token signed at another time is refused");
    let message = etl_runtime::error::report(&refused);
    assert!(message.contains("RDS IAM authentication"), "{message}");
    assert!(!message.contains("X-Amz"), "{message}");
    assert!(!message.contains("AKIDEXAMPLE"), "{message}");
}

#[derive(Debug, etl_runtime::EtlTable)]
#[etl(table = "iam_notes", primary_key(id))]
pub struct IamNote {
    pub id: i64,
    pub body: String,
}

/// IAM authentication's token admits whoever holds it: without a URL that verifies the server,
/// or with a password beside it, the command line is refused before any connection.
#[test]
fn rds_iam_needs_a_verified_server_and_no_password() {
    for (url, why) in [
        ("postgres://etl@db.example.com/prod", "verify-full"),
        (
            "postgres://etl@db.example.com/prod?sslmode=require&sslrootcert=/ca.pem",
            "verify-full",
        ),
        (
            "postgres://etl:pw@db.example.com/prod?sslmode=verify-full&sslrootcert=/ca.pem",
            "leave the password out",
        ),
    ] {
        let output = etl_app()
            .args(["check", "--rds-iam"])
            .env("DATABASE_URL", url)
            .output()
            .expect("check");
        assert_eq!(output.status.code(), Some(2), "{url}: {}", text(&output));
        assert!(text(&output).contains(why), "{url}: {}", text(&output));
        assert!(!text(&output).contains(":pw@"), "{}", text(&output));
    }
}
