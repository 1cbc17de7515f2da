//! Publishing to a real S3-compatible store (Garage) and a real Glue API (moto's server): the
//! happy path read back by pyarrow's own S3 client, and the faults: store down before and during
//! an upload, wrong credentials, a transient failure retried to success.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use etl_tests::faulty_proxy::{Fault, FaultyProxy};
use etl_tests::garage::{self, Garage};

const PREFIX: &str = "exports";

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The demo tables, with purchase_orders grown past two 5 MB parts (random text does not
/// compress).
fn database(label: &str, big: bool) -> etl_tests::TestDb {
    let db = crate::common::demo_database(label);
    if big {
        etl_tests::postgres::psql(
            &db.url,
            "INSERT INTO purchase_orders (uuid, \"type\", body, created_at) \
             SELECT md5(i::text)::uuid, 'standard', \
                    (SELECT string_agg(md5(random()::text || i || j), '') FROM generate_series(1, 12) j), \
                    timestamp '2024-01-01' + i * interval '1 minute' \
             FROM generate_series(1, 40000) i",
        )
        .expect("grow purchase_orders");
    }
    db
}

/// `etl-demo run ARGS` against `db`, with the S3 settings of `env`.
fn etl_app_command(db: &etl_tests::TestDb, env: &[(String, String)], args: &[&str]) -> Command {
    etl_demo(db, env, "run", args)
}

/// `etl-demo SUBCOMMAND ARGS` against `db`, with the S3 settings of `env`.
fn etl_demo(
    db: &etl_tests::TestDb,
    env: &[(String, String)],
    subcommand: &str,
    args: &[&str],
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_etl-demo"));
    command
        .arg(subcommand)
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env(
            "ETL_STAGING_DIR",
            etl_tests::target_dir()
                .join("test-out")
                .join(format!("staging-{}", db.name)),
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

fn etl_app(db: &etl_tests::TestDb, env: &[(String, String)], args: &[&str]) -> Output {
    etl_app_command(db, env, args)
        .output()
        .expect("run etl-app")
}

/// Downloads `prefix/` with pyarrow's S3 client into a local directory.
fn download(garage: &Garage, prefix: &str, name: &str) -> PathBuf {
    let dir = etl_tests::target_dir().join("test-out").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("download dir");
    let python = etl_tests::python().expect("python");
    let script = format!(
        "import pyarrow.fs as fs\n\
         s3 = fs.S3FileSystem(access_key={ak:?}, secret_key={sk:?}, region={region:?}, \
                              endpoint_override='127.0.0.1:{port}', scheme='http')\n\
         fs.copy_files({src:?}, {dst:?}, source_filesystem=s3)\n",
        ak = garage::ACCESS_KEY,
        sk = garage::SECRET_KEY,
        region = garage::REGION,
        port = garage.s3_port,
        src = format!("{}/{}", garage.bucket, prefix),
        dst = dir.display().to_string(),
    );
    let output = Command::new(python)
        .args(["-c", &script])
        .output()
        .expect("pyarrow");
    assert!(
        output.status.success(),
        "pyarrow download failed: {}",
        text(&output)
    );
    dir
}

fn assert_readers_agree(db: &etl_tests::TestDb, dir: &Path, tables: &str) {
    if let Err(e) = etl_tests::python::compare_with_postgres(&db.url, dir, tables) {
        panic!("{e}");
    }
}

async fn s3_client(garage: &Garage) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(garage::REGION))
        .endpoint_url(garage.endpoint())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            garage::ACCESS_KEY,
            garage::SECRET_KEY,
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Every object under the prefix, with its ETag.
async fn objects(garage: &Garage) -> Vec<(String, String)> {
    let client = s3_client(garage).await;
    let listed = client
        .list_objects_v2()
        .bucket(&garage.bucket)
        .prefix(PREFIX)
        .send()
        .await
        .expect("list");
    let mut objects: Vec<(String, String)> = listed
        .contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap_or_default().to_string(),
                o.e_tag().unwrap_or_default().to_string(),
            )
        })
        .collect();
    objects.sort();
    objects
}

async fn read_object(garage: &Garage, key: &str) -> Vec<u8> {
    try_read_object(garage, key)
        .await
        .unwrap_or_else(|| panic!("no object {key}"))
}

/// The object's bytes, or None if there is no such key (any other error fails the test).
async fn try_read_object(garage: &Garage, key: &str) -> Option<Vec<u8>> {
    let client = s3_client(garage).await;
    let object = match client
        .get_object()
        .bucket(&garage.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(object) => object,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return None,
        Err(e) => panic!("get object {key}: {e:?}"),
    };
    Some(object.body.collect().await.expect("body").to_vec())
}

/// Run `run`'s plan once a coordinator has written one of `shards` shards. Polled: the test
/// has no other signal from a coordinator running in another process. A plan may vanish
/// between two looks (a new coordinator removes a dead one's area before writing its own).
async fn plan_of(garage: &Garage, run: &str, shards: u64) -> serde_json::Value {
    let key = format!("exports/.etl-shards/{run}/plan.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(bytes) = try_read_object(garage, &key).await {
            let plan: serde_json::Value = serde_json::from_slice(&bytes).expect("plan");
            if plan["shards"] == shards {
                return plan;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no plan of {shards} shards after 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// What readers are given: each table's current manifest and the complete versions (those
/// with their own `_manifest.json`, uploaded last), without the run reports. A run that failed
/// or was stopped changes none of it.
fn published(objects: &[(String, String)]) -> Vec<(String, String)> {
    let complete: Vec<&str> = objects
        .iter()
        .filter_map(|(k, _)| k.strip_suffix("/_manifest.json"))
        .filter(|dir| dir.rsplit('/').next().is_some_and(|v| v.starts_with("v=")))
        .collect();
    objects
        .iter()
        .filter(|(k, _)| !k.contains("/_runs/"))
        .filter(|(k, _)| {
            k.ends_with("/_manifest.json")
                || complete.iter().any(|v| k.starts_with(&format!("{v}/")))
        })
        .cloned()
        .collect()
}

/// The version directories of `table` (`v=<run id>`), oldest first.
fn versions(objects: &[(String, String)], table: &str) -> Vec<String> {
    let prefix = format!("{PREFIX}/{table}/");
    let mut versions: Vec<String> = objects
        .iter()
        .filter_map(|(k, _)| k.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once('/'))
        .map(|(version, _)| version.to_string())
        .filter(|v| v.starts_with("v="))
        .collect();
    versions.dedup();
    versions
}

async fn pending_uploads(garage: &Garage) -> usize {
    let client = s3_client(garage).await;
    client
        .list_multipart_uploads()
        .bucket(&garage.bucket)
        .send()
        .await
        .expect("list multipart uploads")
        .uploads()
        .len()
}

/// Where a test's exports go: its own bucket.
fn output(garage: &Garage) -> String {
    format!("s3://{}/{PREFIX}", garage.bucket)
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_go_up_in_parts_with_encryption_and_read_back_equal() {
    let garage = Garage::shared("exports_go_up_in_parts_with_encryption_a").expect("garage");
    let s3_out = output(&garage);
    // Watch what is sent: Garage accepts SSE-S3 and ignores it, so the header is what we check.
    // Each answer comes 30 ms late, as from a store in another building: the parts of
    // purchase_orders (5 MB each) go up together, not in turn.
    let proxy = FaultyProxy::start(
        garage.s3_port,
        Fault::Latency(std::time::Duration::from_millis(30)),
    )
    .expect("proxy");
    let env = garage.env_for(&format!("http://127.0.0.1:{}", proxy.port));
    let db = database("s3_happy", true);
    let output = etl_app(
        &db,
        &env,
        &[
            "--tables",
            "notes,purchase_orders",
            "--output",
            s3_out.as_str(),
            "--s3-part-size",
            "5MB",
            "--sse",
            "AES256",
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains(&format!("{s3_out}/purchase_orders")),
        "{}",
        text(&output)
    );
    assert!(
        proxy.saw("x-amz-server-side-encryption: AES256"),
        "no SSE header was sent"
    );
    assert!(
        proxy.most_in_flight() >= 2,
        "the parts of purchase_orders went up {} at a time",
        proxy.most_in_flight()
    );

    let objects = objects(&garage).await;
    let version = &versions(&objects, "purchase_orders")[0];
    let big = objects
        .iter()
        .find(|(k, _)| *k == format!("exports/purchase_orders/{version}/part-00000.parquet"))
        .expect("purchase_orders uploaded");
    assert!(
        big.1.contains('-'),
        "a multipart object's ETag has a part count: {}",
        big.1
    );
    assert!(
        objects
            .iter()
            .any(|(k, _)| k == "exports/notes/_manifest.json")
    );
    assert_eq!(pending_uploads(&garage).await, 0);

    let dir = download(&garage, PREFIX, &format!("{}-s3", db.name));
    assert_readers_agree(&db, &dir, "notes,purchase_orders");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_is_down_fails_the_run_clearly() {
    // A node of its own: the test stops it.
    let mut garage = Garage::start().expect("garage");
    let s3_out = output(&garage);
    let env = garage.env_for(&garage.endpoint());
    garage.stop();
    let db = database("s3_down", false);
    let output = etl_app(
        &db,
        &env,
        &["--tables", "notes", "--output", s3_out.as_str()],
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains(&format!("{s3_out}/notes")), "{message}");
    assert!(
        !message.contains(garage::SECRET_KEY),
        "the secret key was printed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_dying_mid_upload_leaves_the_previous_export_whole() {
    let garage = Garage::shared("a_store_dying_mid_upload_leaves_the_prev").expect("garage");
    let s3_out = output(&garage);
    let db = database("s3_cut", true);
    let direct = garage.env_for(&garage.endpoint());
    let first = etl_app(
        &db,
        &direct,
        &[
            "--tables",
            "purchase_orders",
            "--output",
            s3_out.as_str(),
            "--s3-part-size",
            "5MB",
        ],
    );
    assert!(first.status.success(), "{}", text(&first));
    let before = objects(&garage).await;

    // The second run's connection dies after 7 MB: inside the second part.
    let proxy = FaultyProxy::start(garage.s3_port, Fault::CutAfterBytes(7 << 20)).expect("proxy");
    let cut = garage.env_for(&format!("http://127.0.0.1:{}", proxy.port));
    let second = etl_app(
        &db,
        &cut,
        &[
            "--tables",
            "purchase_orders",
            "--output",
            s3_out.as_str(),
            "--s3-part-size",
            "5MB",
        ],
    );
    let message = text(&second);
    assert!(proxy.cut(), "the fault never fired: {message}");
    assert_eq!(second.status.code(), Some(1), "{message}");
    assert!(message.contains("purchase_orders"), "{message}");
    let after = objects(&garage).await;
    assert_eq!(
        published(&after),
        published(&before),
        "readers see exactly the previous export"
    );

    // A retry publishes a new version; the failed run's incomplete version is removed, and
    // its multipart upload, which the dead store could not abort, is aborted.
    let retry = etl_app(
        &db,
        &direct,
        &["--tables", "purchase_orders", "--output", s3_out.as_str()],
    );
    assert!(retry.status.success(), "{}", text(&retry));
    let retried = objects(&garage).await;
    assert_eq!(
        versions(&retried, "purchase_orders").len(),
        2,
        "{retried:?}"
    );
    assert_eq!(
        published(&retried).len(),
        retried
            .iter()
            .filter(|(k, _)| !k.contains("/_runs/"))
            .count(),
        "{retried:?}"
    );
}

/// Each export is a new version; `--keep-versions N` keeps the newest N complete ones, and the
/// current manifest names the newest, which a manifest reader (compare.py) reads back equal.
#[tokio::test(flavor = "multi_thread")]
async fn old_versions_are_removed_beyond_keep_versions() {
    let garage = Garage::shared("old_versions_are_removed_beyond_keep_ver").expect("garage");
    let s3_out = output(&garage);
    let db = database("s3_versions", false);
    let env = garage.env_for(&garage.endpoint());
    let mut seen = Vec::new();
    for keep in ["3", "3", "3", "2", "1"] {
        let output = etl_app(
            &db,
            &env,
            &[
                "--tables",
                "notes",
                "--output",
                s3_out.as_str(),
                "--keep-versions",
                keep,
            ],
        );
        assert!(output.status.success(), "{}", text(&output));
        let objects = objects(&garage).await;
        let now = versions(&objects, "notes");
        let newest = now.last().expect("a version").clone();
        assert!(!seen.contains(&newest), "every run is a new version");
        seen.push(newest.clone());
        let expected: Vec<String> = seen
            .iter()
            .rev()
            .take(keep.parse().expect("number"))
            .rev()
            .cloned()
            .collect();
        assert_eq!(now, expected, "keep {keep}");
        let manifest: serde_json::Value = serde_json::from_slice(
            &read_object(&garage, &format!("{PREFIX}/notes/_manifest.json")).await,
        )
        .expect("json");
        assert_eq!(manifest["version"], newest.as_str());
        assert_eq!(
            manifest["location"],
            format!("{s3_out}/notes/{newest}").as_str()
        );
    }
    let dir = download(&garage, PREFIX, &format!("{}-s3", db.name));
    assert_readers_agree(&db, &dir, "notes");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_are_a_clear_error() {
    let garage = Garage::shared("wrong_credentials_are_a_clear_error").expect("garage");
    let s3_out = output(&garage);
    let mut env = garage.env_for(&garage.endpoint());
    let wrong = "not-the-secret-0123456789abcdef";
    for (k, v) in &mut env {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = wrong.into();
        }
    }
    let db = database("s3_creds", false);
    let output = etl_app(
        &db,
        &env,
        &["--tables", "notes", "--output", s3_out.as_str()],
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.to_lowercase().contains("signature") || message.contains("AccessDenied"),
        "{message}"
    );
    assert!(
        !message.contains(wrong),
        "the secret key was printed: {message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_failure_is_retried_to_success() {
    let garage = Garage::shared("a_transient_failure_is_retried_to_succes").expect("garage");
    let s3_out = output(&garage);
    // The store refuses the first connections, as while it restarts.
    let proxy = FaultyProxy::start(garage.s3_port, Fault::DropFirstConnections(2)).expect("proxy");
    let env = garage.env_for(&format!("http://127.0.0.1:{}", proxy.port));
    let db = database("s3_retry", false);
    let output = etl_app(
        &db,
        &env,
        &["--tables", "notes,currencies", "--output", s3_out.as_str()],
    );
    assert!(output.status.success(), "{}", text(&output));
    let dir = download(&garage, PREFIX, &format!("{}-s3", db.name));
    assert_readers_agree(&db, &dir, "notes,currencies");
}

fn glue_env(garage: &Garage, moto: &etl_tests::moto::MotoServer) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = garage
        .env_for(&garage.endpoint())
        .into_iter()
        .filter(|(k, _)| k != "AWS_ENDPOINT_URL")
        .collect();
    // One endpoint per service: S3 is Garage, Glue is moto.
    env.push(("AWS_ENDPOINT_URL_S3".into(), garage.endpoint()));
    env.push(("AWS_ENDPOINT_URL_GLUE".into(), moto.endpoint()));
    env
}

async fn glue_client(moto: &etl_tests::moto::MotoServer) -> aws_sdk_glue::Client {
    let config = aws_sdk_glue::config::Builder::new()
        .behavior_version(aws_sdk_glue::config::BehaviorVersion::latest())
        .region(aws_sdk_glue::config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(aws_sdk_glue::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    aws_sdk_glue::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread")]
async fn glue_tables_get_exact_types_from_the_models() {
    let garage = Garage::shared("glue_tables_get_exact_types_from_the_mod").expect("garage");
    let s3_out = output(&garage);
    let moto = etl_tests::moto::MotoServer::start().expect("moto");
    let db = database("glue_tables", false);
    let env = glue_env(&garage, &moto);
    let output = etl_app(
        &db,
        &env,
        &[
            "--tables",
            "purchase_orders,spend_per_day,accounts",
            "--output",
            s3_out.as_str(),
            "--glue-database",
            "procurement",
        ],
    );
    assert!(output.status.success(), "{}", text(&output));

    let glue = glue_client(&moto).await;
    let table = glue
        .get_table()
        .database_name("procurement")
        .name("purchase_orders")
        .send()
        .await
        .expect("the table was defined");
    let descriptor = table
        .table()
        .and_then(|t| t.storage_descriptor())
        .expect("descriptor");
    // The Glue table reads the current version, the one the table's manifest names.
    let manifest: serde_json::Value = serde_json::from_slice(
        &read_object(&garage, &format!("{PREFIX}/purchase_orders/_manifest.json")).await,
    )
    .expect("json");
    let current = manifest["location"].as_str().expect("location");
    assert!(
        current.starts_with(&format!("{s3_out}/purchase_orders/v=")),
        "{current}"
    );
    assert_eq!(descriptor.location(), Some(format!("{current}/").as_str()));
    let types: Vec<(String, String)> = descriptor
        .columns()
        .iter()
        .map(|c| {
            (
                c.name().to_string(),
                c.r#type().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for expected in [
        ("id", "bigint"),
        ("amount", "decimal(12,2)"),
        ("conversion_rate", "decimal(18,8)"),
        ("created_at", "timestamp"),
        ("due_date", "date"),
        ("is_active", "boolean"),
        ("tags", "string"),
    ] {
        assert!(
            types.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} missing from {types:?}"
        );
    }
    // Tasks get definitions too.
    glue.get_table()
        .database_name("procurement")
        .name("spend_per_day")
        .send()
        .await
        .expect("the task's table was defined");
    // A table with a cursor: its own columns, then the row versions readers rank by.
    let accounts = glue
        .get_table()
        .database_name("procurement")
        .name("accounts")
        .send()
        .await
        .expect("the table with a cursor was defined");
    let columns: Vec<(String, String)> = accounts
        .table()
        .and_then(|t| t.storage_descriptor())
        .map(|d| {
            d.columns()
                .iter()
                .map(|c| {
                    (
                        c.name().to_string(),
                        c.r#type().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let last_two: Vec<(&str, &str)> = columns
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        last_two,
        [("_etl_batch", "bigint"), ("_etl_deleted", "boolean")],
        "{columns:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn glue_crawlers_are_started_waited_for_and_refused_clearly() {
    let garage = Garage::shared("glue_crawlers_are_started_waited_for_and").expect("garage");
    let s3_out = output(&garage);
    let moto = etl_tests::moto::MotoServer::start().expect("moto");
    let db = database("glue_crawler", false);
    let env = glue_env(&garage, &moto);
    let glue = glue_client(&moto).await;
    // moto has no UpdateCrawler, so the crawler is created already pointing at the export;
    // etl-app then leaves its targets alone and only starts it.
    glue.create_crawler()
        .name("procurement-crawler")
        .role("arn:aws:iam::123456789012:role/glue")
        .database_name("procurement")
        .targets(
            aws_sdk_glue::types::CrawlerTargets::builder()
                .s3_targets(
                    aws_sdk_glue::types::S3Target::builder()
                        .path(format!("{s3_out}/notes/"))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("create crawler");

    let missing = etl_app(
        &db,
        &env,
        &[
            "--tables",
            "notes",
            "--output",
            s3_out.as_str(),
            "--glue-crawler",
            "nope",
        ],
    );
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        text(&missing).contains("no crawler of that name"),
        "{}",
        text(&missing)
    );

    // Crawls finish a second after they start (moto only moves on when told to).
    moto.post(
        "/moto-api/state-manager/set-transition",
        r#"{"model_name": "glue::crawl", "transition": {"progression": "time", "seconds": 1}}"#,
    )
    .expect("moto state manager");
    let waited = etl_app(
        &db,
        &env,
        &[
            "--tables",
            "notes",
            "--output",
            s3_out.as_str(),
            "--glue-crawler",
            "procurement-crawler",
            "--wait",
            "60",
        ],
    );
    assert!(waited.status.success(), "{}", text(&waited));
    assert!(
        text(&waited).contains("crawler procurement-crawler finished"),
        "{}",
        text(&waited)
    );

    // A crawler that is still running is a clear message, not a loop.
    moto.post(
        "/moto-api/state-manager/set-transition",
        r#"{"model_name": "glue::crawl", "transition": {"progression": "manual", "times": 1000}}"#,
    )
    .expect("moto state manager");
    let started = etl_app(
        &db,
        &env,
        &[
            "--tables",
            "notes",
            "--output",
            s3_out.as_str(),
            "--glue-crawler",
            "procurement-crawler",
        ],
    );
    assert!(started.status.success(), "{}", text(&started));
    let again = etl_app(
        &db,
        &env,
        &[
            "--tables",
            "notes",
            "--output",
            s3_out.as_str(),
            "--glue-crawler",
            "procurement-crawler",
        ],
    );
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("already running"), "{}", text(&again));
}

/// SIGTERM while a multipart upload hangs: the run exits within seconds with 143, aborts the
/// upload (no incomplete multipart upload is left) and readers see the previous export.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_upload_aborts_it_and_keeps_the_previous_export() {
    let garage = Garage::shared("sigterm_mid_upload_aborts_it_and_keeps_t").expect("garage");
    let s3_out = output(&garage);
    let db = database("s3_sigterm", true);
    let direct = garage.env_for(&garage.endpoint());
    let args = [
        "--tables",
        "purchase_orders",
        "--output",
        s3_out.as_str(),
        "--s3-part-size",
        "5MB",
    ];
    let first = etl_app(&db, &direct, &args);
    assert!(first.status.success(), "{}", text(&first));
    let before = objects(&garage).await;

    // The second run's upload hangs inside its second part.
    let proxy =
        FaultyProxy::start(garage.s3_port, Fault::StallRequestsAfterBytes(7 << 20)).expect("proxy");
    let hanging = garage.env_for(&format!("http://127.0.0.1:{}", proxy.port));
    let child = etl_app_command(&db, &hanging, &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start etl-demo");
    assert!(
        proxy.wait_stalled(std::time::Duration::from_secs(120)),
        "the upload never reached the stall"
    );
    assert_eq!(
        pending_uploads(&garage).await,
        1,
        "a multipart upload is under way"
    );
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .expect("sh");
    assert!(status.success());
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = exited
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("exits within 5 s of SIGTERM")
        .expect("output");
    let message = text(&output);
    assert_eq!(output.status.code(), Some(143), "{message}");
    assert_eq!(
        pending_uploads(&garage).await,
        0,
        "an incomplete multipart upload is left"
    );
    // The previous export, and the cancelled run's report beside it.
    let after = objects(&garage).await;
    assert_eq!(
        published(&after),
        published(&before),
        "readers see exactly the previous export"
    );
    assert!(
        after.len() == before.len() + 1,
        "the cancelled run's report: {after:?}"
    );
}

/// A partitioned table on S3: a version of Hive directories, read back equal through its
/// manifest; on Glue its partition keys, and the projection Athena needs (the template points
/// at the current version); `--glue-partitions register` registers every partition instead.
#[tokio::test(flavor = "multi_thread")]
async fn partitioned_tables_get_projection_or_registered_partitions() {
    let garage = Garage::shared("partitioned_tables_get_projection_or_reg").expect("garage");
    let s3_out = output(&garage);
    let moto = etl_tests::moto::MotoServer::start().expect("moto");
    let db = database("s3_partitions", false);
    // S3 answers 30 ms late: the partitions' files go up together, not in turn.
    let proxy = FaultyProxy::start(
        garage.s3_port,
        Fault::Latency(std::time::Duration::from_millis(30)),
    )
    .expect("proxy");
    let mut env = glue_env(&garage, &moto);
    for (name, value) in &mut env {
        if name == "AWS_ENDPOINT_URL_S3" {
            *value = format!("http://127.0.0.1:{}", proxy.port);
        }
    }
    let args = [
        "--tables",
        "shipments",
        "--output",
        s3_out.as_str(),
        "--glue-database",
        "logistics",
    ];
    let output = etl_app(&db, &env, &args);
    let message = text(&output);
    assert!(output.status.success(), "{message}");
    // What projection cannot reach is said, not hidden.
    assert!(message.contains("--glue-partitions register"), "{message}");
    assert!(
        proxy.most_in_flight() >= 4,
        "partition files went up {} at a time",
        proxy.most_in_flight()
    );

    let manifest: serde_json::Value = serde_json::from_slice(
        &read_object(&garage, &format!("{PREFIX}/shipments/_manifest.json")).await,
    )
    .expect("json");
    let current = manifest["location"].as_str().expect("location").to_string();
    let partitions = manifest["partitions"].as_array().expect("partitions").len();
    assert!(partitions > 40, "{partitions}");
    let objects = objects(&garage).await;
    let version = current.rsplit('/').next().expect("version");
    assert!(
        objects.iter().any(|(k, _)| *k
            == format!(
                "{PREFIX}/shipments/{version}/region=us%2Feast/shipped_at_day=2019-04-08/part-00000.parquet"
            )),
        "{objects:?}"
    );
    let dir = download(&garage, PREFIX, &format!("{}-s3", db.name));
    assert_readers_agree(&db, &dir, "shipments");

    let glue = glue_client(&moto).await;
    let table = glue
        .get_table()
        .database_name("logistics")
        .name("shipments")
        .send()
        .await
        .expect("the table was defined");
    let table = table.table().expect("table");
    let keys: Vec<(&str, &str)> = table
        .partition_keys()
        .iter()
        .map(|c| (c.name(), c.r#type().unwrap_or_default()))
        .collect();
    assert_eq!(keys, [("region", "string"), ("shipped_at_day", "string")]);
    let columns: Vec<&str> = table
        .storage_descriptor()
        .expect("descriptor")
        .columns()
        .iter()
        .map(|c| c.name())
        .collect();
    assert_eq!(
        columns,
        ["id", "shipped_at", "carrier_id", "weight_kg", "delivered"],
        "an identity key is a partition column only"
    );
    let parameters = table.parameters().expect("parameters");
    let parameter = |key: &str| parameters.get(key).map(String::as_str);
    assert_eq!(parameter("projection.enabled"), Some("true"));
    assert_eq!(parameter("projection.shipped_at_day.type"), Some("date"));
    assert_eq!(
        parameter("projection.shipped_at_day.format"),
        Some("yyyy-MM-dd")
    );
    assert_eq!(
        parameter("projection.shipped_at_day.range"),
        Some("2019-03-01,NOW")
    );
    assert_eq!(parameter("projection.shipped_at_day.interval"), Some("1"));
    assert_eq!(
        parameter("projection.shipped_at_day.interval.unit"),
        Some("DAYS")
    );
    assert_eq!(parameter("projection.region.type"), Some("enum"));
    assert_eq!(
        parameter("projection.region.values"),
        Some("ap:south,eu-west,sa=north 50%,us/east")
    );
    assert_eq!(
        parameter("storage.location.template"),
        Some(format!("{current}/region=${{region}}/shipped_at_day=${{shipped_at_day}}/").as_str())
    );

    let mut register = args.to_vec();
    register.extend(["--glue-partitions", "register"]);
    let output = etl_app(&db, &env, &register);
    assert!(output.status.success(), "{}", text(&output));
    let manifest: serde_json::Value = serde_json::from_slice(
        &read_object(&garage, &format!("{PREFIX}/shipments/_manifest.json")).await,
    )
    .expect("json");
    let current = manifest["location"].as_str().expect("location");
    let registered = glue
        .get_partitions()
        .database_name("logistics")
        .table_name("shipments")
        .send()
        .await
        .expect("partitions");
    assert_eq!(registered.partitions().len(), partitions);
    let us_east = registered
        .partitions()
        .iter()
        .find(|p| p.values() == ["us/east", "2019-04-08"])
        .expect("the us/east partition of 2019-04-08");
    assert_eq!(
        us_east.storage_descriptor().and_then(|d| d.location()),
        Some(format!("{current}/region=us%2Feast/shipped_at_day=2019-04-08/").as_str())
    );
    assert!(
        registered
            .partitions()
            .iter()
            .any(|p| p.values() == ["__HIVE_DEFAULT_PARTITION__", "2019-03-01"])
    );
}

/// The store dies halfway through the upload of a partitioned table's ~80 objects: the
/// manifest, the published versions and the Glue location stay on the previous export; a retry
/// publishes a new version and removes the failed one.
#[tokio::test(flavor = "multi_thread")]
async fn a_partitioned_upload_cut_halfway_leaves_every_reader_on_the_previous_version() {
    let garage = Garage::shared("a_partitioned_upload_cut_halfway_leaves_").expect("garage");
    let s3_out = output(&garage);
    let moto = etl_tests::moto::MotoServer::start().expect("moto");
    let db = database("s3_partitions_cut", false);
    let args = [
        "--tables",
        "shipments",
        "--output",
        s3_out.as_str(),
        "--glue-database",
        "logistics",
    ];
    let direct = glue_env(&garage, &moto);
    let first = etl_app(&db, &direct, &args);
    assert!(first.status.success(), "{}", text(&first));
    let before = objects(&garage).await;
    let glue = glue_client(&moto).await;
    let location = || async {
        glue.get_table()
            .database_name("logistics")
            .name("shipments")
            .send()
            .await
            .expect("table")
            .table()
            .and_then(|t| t.storage_descriptor())
            .and_then(|d| d.location())
            .map(str::to_string)
    };
    let published_location = location().await;

    // About half of the version's bytes go through, then the store is gone.
    let proxy = FaultyProxy::start(garage.s3_port, Fault::CutAfterBytes(120 << 10)).expect("proxy");
    let cut: Vec<(String, String)> = direct
        .iter()
        .map(|(k, v)| match k.as_str() {
            "AWS_ENDPOINT_URL_S3" => (k.clone(), format!("http://127.0.0.1:{}", proxy.port)),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    // One request at a time, so that objects are whole before the cut: with many at once, the
    // cut could come before any of them finished, and nothing of the new version would show.
    let serial: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--s3-concurrency", "1"])
        .collect();
    let second = etl_app(&db, &cut, &serial);
    let message = text(&second);
    assert!(proxy.cut(), "the fault never fired: {message}");
    assert_eq!(second.status.code(), Some(1), "{message}");
    let after = objects(&garage).await;
    assert!(
        after.len() > before.len(),
        "part of the new version was uploaded: {after:?}"
    );
    assert_eq!(
        published(&after),
        published(&before),
        "manifest and versions"
    );
    assert_eq!(location().await, published_location, "the Glue location");

    let retry = etl_app(&db, &direct, &args);
    assert!(retry.status.success(), "{}", text(&retry));
    let retried = objects(&garage).await;
    assert_eq!(versions(&retried, "shipments").len(), 2, "{retried:?}");
    assert_ne!(location().await, published_location);
    let dir = download(&garage, PREFIX, &format!("{}-s3", db.name));
    assert_readers_agree(&db, &dir, "shipments");
}

/// An incremental table on S3 over a stream of changes (inserts, updates, a column added in
/// PostgreSQL): a full export, batches, a run cut between its batch's upload and the
/// manifest's switch (the state does not move, the rerun misses nothing and removes the cut
/// run's files), and --full starting a new version. After each published run the current
/// version's files, read with the README's latest-version query (DuckDB) and by pyarrow,
/// equal PostgreSQL.
#[tokio::test(flavor = "multi_thread")]
async fn incremental_batches_on_s3_miss_nothing_across_a_cut_run() {
    let garage = Garage::shared("incremental_batches_on_s3_miss_nothing_a").expect("garage");
    let s3_out = output(&garage);
    let db = database("s3_incremental", false);
    let env = garage.env_for(&garage.endpoint());
    let args = ["--tables", "accounts", "--output", s3_out.as_str()];
    let manifest = || async {
        serde_json::from_slice::<serde_json::Value>(
            &read_object(&garage, &format!("{PREFIX}/accounts/_manifest.json")).await,
        )
        .expect("manifest JSON")
    };
    let sql = |statement: &str| etl_tests::postgres::psql(&db.url, statement).expect(statement);
    let mut step = 0;
    let check = |step: usize| {
        let garage = &garage;
        let db = &db;
        async move {
            let current = manifest().await;
            let version = current["version"].as_str().expect("version").to_string();
            let dir = download(garage, PREFIX, &format!("{}-s3-{step}", db.name));
            let verdict = etl_tests::python::latest_versions_equal_postgres(
                &db.url,
                &dir.join("accounts").join(&version),
                "accounts",
                ("id", "id, owner, balance::text, updated_at"),
            )
            .unwrap_or_else(|e| panic!("after step {step}: {e}"));
            (current, verdict)
        }
    };

    let first = etl_app(&db, &env, &args);
    assert!(first.status.success(), "{}", text(&first));
    let (full, _) = check(step).await;
    assert_eq!(
        full["incremental"]["batches"].as_array().map(Vec::len),
        Some(0)
    );

    for change in [
        "UPDATE accounts SET balance = balance + 1 WHERE id % 10 = 0; \
         INSERT INTO accounts (id, owner, balance) SELECT i, 'new ' || i, i FROM generate_series(1001, 1100) i",
        // A column the model does not have: the drift check lets the batch go on. And
        // deletions, found against the key file in the version.
        "ALTER TABLE accounts ADD COLUMN note text; \
         UPDATE accounts SET owner = 'renamed', note = 'n' WHERE id <= 5; \
         DELETE FROM accounts WHERE id BETWEEN 1001 AND 1010",
    ] {
        step += 1;
        sql(change);
        let run = etl_app(&db, &env, &args);
        assert!(run.status.success(), "{}", text(&run));
        let (current, verdict) = check(step).await;
        assert_eq!(
            current["incremental"]["batches"].as_array().map(Vec::len),
            Some(step),
            "{}",
            text(&run)
        );
        let rows = if step == 1 { 1100 } else { 1090 };
        assert!(
            verdict.contains(&format!("equal: {rows} rows")),
            "{verdict}"
        );
        assert_eq!(
            current["version"], full["version"],
            "batches join the version"
        );
    }

    // The store goes away exactly when the run switches the manifest: its batch is uploaded,
    // the state is not.
    sql(
        "UPDATE accounts SET balance = 0 WHERE id BETWEEN 500 AND 520; \
         DELETE FROM accounts WHERE id = 600",
    );
    let before = manifest().await;
    let needle: &'static str = Box::leak(
        format!("PUT /{}/{PREFIX}/accounts/_manifest.json", garage.bucket).into_boxed_str(),
    );
    let proxy = FaultyProxy::start(garage.s3_port, Fault::CutAtRequest(needle)).expect("proxy");
    let cut_env = garage.env_for(&format!("http://127.0.0.1:{}", proxy.port));
    let cut = etl_app(&db, &cut_env, &args);
    assert!(proxy.cut(), "the fault never fired: {}", text(&cut));
    assert_eq!(cut.status.code(), Some(1), "{}", text(&cut));
    assert_eq!(manifest().await, before, "the state did not move");
    let orphans = |objects: &[(String, String)]| -> Vec<String> {
        objects
            .iter()
            .filter(|(k, _)| k.contains("/batch-00003-"))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let uploaded = orphans(&objects(&garage).await);
    assert_eq!(
        uploaded.len(),
        1,
        "the cut run uploaded its batch: {uploaded:?}"
    );

    step += 1;
    let rerun = etl_app(&db, &env, &args);
    assert!(rerun.status.success(), "{}", text(&rerun));
    let (current, verdict) = check(step).await;
    assert!(verdict.contains("equal: 1089 rows"), "{verdict}");
    assert_eq!(current["incremental"]["batches"][2]["deleted"], 1);
    // The superseded and the cut run's key files are gone; the manifest's is the one left.
    let key_files: Vec<String> = objects(&garage)
        .await
        .into_iter()
        .filter(|(k, _)| k.contains("/_keys-"))
        .map(|(k, _)| k)
        .collect();
    let listed = current["incremental"]["keys"].as_str().expect("a key file");
    assert!(
        key_files.len() == 1 && key_files[0].ends_with(listed),
        "{key_files:?}"
    );
    // The cut run's batch 3 is gone; the rerun's batch came after it, as batch 4, so that a
    // reader of the version's prefix who saw both ordered them by their snapshots.
    assert_eq!(orphans(&objects(&garage).await), Vec::<String>::new());
    assert_eq!(current["incremental"]["batches"][2]["batch"], 4);
    let rerun_files = objects(&garage).await;
    assert!(
        rerun_files.iter().any(|(k, _)| k.contains("/batch-00004-")),
        "{rerun_files:?}"
    );

    // Compacted on S3: a new version holding one version per current row, made current like
    // an export, with the state carried over; the next batch adds to it.
    step += 1;
    let compacted = etl_demo(
        &db,
        &env,
        "compact",
        &["--tables", "accounts", "--output", s3_out.as_str()],
    )
    .output()
    .expect("etl-demo compact");
    assert!(compacted.status.success(), "{}", text(&compacted));
    let (current, verdict) = check(step).await;
    assert!(
        verdict.contains("equal: 1089 rows from 1089 versions (0 deletions)"),
        "{verdict}"
    );
    assert_ne!(current["version"], full["version"]);
    assert_eq!(
        current["incremental"]["batches"].as_array().map(Vec::len),
        Some(0)
    );
    step += 1;
    sql("DELETE FROM accounts WHERE id = 700");
    let after = etl_app(&db, &env, &args);
    assert!(after.status.success(), "{}", text(&after));
    let (current, verdict) = check(step).await;
    assert!(verdict.contains("equal: 1088 rows"), "{verdict}");
    assert_eq!(current["incremental"]["batches"][0]["deleted"], 1);

    // --full: a new version whose state starts afresh.
    step += 1;
    sql("UPDATE accounts SET balance = 1 WHERE id = 1");
    let full_again = etl_app(&db, &env, &[&args[..], &["--full"]].concat());
    assert!(full_again.status.success(), "{}", text(&full_again));
    let (current, _) = check(step).await;
    assert_ne!(current["version"], full["version"]);
    assert_eq!(
        current["incremental"]["batches"].as_array().map(Vec::len),
        Some(0)
    );
}

/// S3 has no lock: a run that planned its batch from a state another run has since advanced
/// does not switch the manifest (checked, and conditional on its ETag), fails for that table,
/// and a later run removes the files it uploaded.
#[tokio::test(flavor = "multi_thread")]
async fn two_runs_of_an_incremental_table_on_s3_do_not_both_advance_it() {
    let garage = Garage::shared("two_runs_of_an_incremental_table_on_s3_d").expect("garage");
    let s3_out = output(&garage);
    let db = database("s3_incremental_race", false);
    let env = garage.env_for(&garage.endpoint());
    let args = ["--tables", "accounts", "--output", s3_out.as_str()];
    let sql = |statement: &str| etl_tests::postgres::psql(&db.url, statement).expect(statement);
    let manifest = || async {
        serde_json::from_slice::<serde_json::Value>(
            &read_object(&garage, &format!("{PREFIX}/accounts/_manifest.json")).await,
        )
        .expect("manifest JSON")
    };
    let first = etl_app(&db, &env, &args);
    assert!(first.status.success(), "{}", text(&first));

    // Run A plans batch 1, then pauses as it uploads it ...
    sql("UPDATE accounts SET balance = 1 WHERE id = 1");
    let needle: &'static str =
        Box::leak(format!("PUT /{}/{PREFIX}/accounts/v", garage.bucket).into_boxed_str());
    let proxy = FaultyProxy::start(garage.s3_port, Fault::HoldRequest(needle)).expect("proxy");
    let slow = etl_app_command(
        &db,
        &garage.env_for(&format!("http://127.0.0.1:{}", proxy.port)),
        &args,
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("run A");
    assert!(
        proxy.wait_stalled(std::time::Duration::from_secs(60)),
        "run A never reached its upload"
    );
    // ... while run B publishes batch 1.
    sql("UPDATE accounts SET balance = 2 WHERE id = 2");
    let fast = etl_app(&db, &env, &args);
    assert!(fast.status.success(), "{}", text(&fast));
    let published = manifest().await;
    proxy.release();
    let slow = slow.wait_with_output().expect("run A");
    let said = text(&slow);
    assert_eq!(slow.status.code(), Some(1), "{said}");
    assert!(said.contains("advanced by another run"), "{said}");
    assert_eq!(manifest().await, published, "run B's state stands");

    // The next run goes on from B's state and removes A's uploaded batch.
    sql("UPDATE accounts SET balance = 3 WHERE id = 3");
    let next = etl_app(&db, &env, &args);
    assert!(next.status.success(), "{}", text(&next));
    let current = manifest().await;
    let listed: Vec<String> = current["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    let batch_objects: Vec<String> = objects(&garage)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.contains("/batch-"))
        .collect();
    assert_eq!(batch_objects.len(), 2, "{batch_objects:?}");
    assert!(
        batch_objects
            .iter()
            .all(|k| listed.iter().any(|f| k.ends_with(f.as_str()))),
        "only listed batches remain: {batch_objects:?} vs {listed:?}"
    );
    let version = current["version"].as_str().expect("version");
    let dir = download(&garage, PREFIX, &format!("{}-s3", db.name));
    etl_tests::python::latest_versions_equal_postgres(
        &db.url,
        &dir.join("accounts").join(version),
        "accounts",
        ("id", "id, owner, balance::text, updated_at"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sharded_run_on_s3_publishes_each_table_once_every_shard_has_uploaded() {
    let garage = Garage::shared("a_sharded_run_on_s3_publishes_each_table").expect("garage");
    let s3_out = output(&garage);
    let moto = etl_tests::moto::MotoServer::start().expect("moto");
    let env = glue_env(&garage, &moto);
    let db = database("s3_shards", false);
    let run = "s3-shards-1";
    let coordinator = etl_demo(
        &db,
        &env,
        "coordinate",
        &[
            "--tables",
            "purchase_orders,shipments",
            "--range-pages",
            "8",
            "--shards",
            "2",
            "--run-name",
            run,
            "--output",
            s3_out.as_str(),
            "--glue-database",
            "procurement",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("coordinator");
    let plan = plan_of(&garage, run, 2).await;
    let version = plan["version"].as_str().expect("version").to_string();
    let shard = |index: &str| {
        let output = etl_demo(
            &db,
            &env,
            // The older spelling of `etl-app shard --run-name`, still accepted.
            "run",
            &[
                "--shard-of",
                run,
                "--shard",
                index,
                "--output",
                s3_out.as_str(),
            ],
        )
        .output()
        .expect("shard");
        assert!(output.status.success(), "shard {index}: {}", text(&output));
    };
    // Shard 0's first attempt uploads its files and dies before saying it is done, leaving a
    // stale object of an attempt that wrote more; its retry replaces them.
    shard("0");
    let client = s3_client(&garage).await;
    client
        .delete_object()
        .bucket(&garage.bucket)
        .key(format!("exports/.etl-shards/{run}/shard-00000.done.json"))
        .send()
        .await
        .expect("remove the done marker");
    let stale = format!("exports/purchase_orders/v={version}/shard-00000-part-00099.parquet");
    client
        .put_object()
        .bucket(&garage.bucket)
        .key(&stale)
        .body(b"stale".to_vec().into())
        .send()
        .await
        .expect("stale object");
    shard("0");
    shard("1");
    let output = coordinator.wait_with_output().expect("coordinator");
    assert!(output.status.success(), "{}", text(&output));

    let objects = objects(&garage).await;
    assert!(
        !objects.iter().any(|(k, _)| *k == stale),
        "the stale object survived the retry"
    );
    assert!(
        !objects.iter().any(|(k, _)| k.contains(".etl-shards/")),
        "the run's area was left behind"
    );
    for table in ["purchase_orders", "shipments"] {
        assert_eq!(
            versions(&objects, table),
            [format!("v={version}")],
            "{table}"
        );
    }
    // The catalog points at the version the shards wrote, once it is current.
    let glue = glue_client(&moto).await;
    for table in ["purchase_orders", "shipments"] {
        let defined = glue
            .get_table()
            .database_name("procurement")
            .name(table)
            .send()
            .await
            .expect("the table was defined");
        let location = defined
            .table()
            .and_then(|t| t.storage_descriptor())
            .and_then(|d| d.location())
            .unwrap_or_default()
            .to_string();
        assert!(
            location
                .trim_end_matches('/')
                .ends_with(&format!("{table}/v={version}")),
            "{table}: {location}"
        );
    }
    let dir = download(&garage, PREFIX, &format!("{}-s3", db.name));
    assert_readers_agree(&db, &dir, "purchase_orders,shipments");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sharded_run_on_s3_whose_coordinator_dies_publishes_nothing() {
    let garage = Garage::shared("a_sharded_run_on_s3_whose_coordinator_di").expect("garage");
    let s3_out = output(&garage);
    let env = garage.env_for(&format!("http://127.0.0.1:{}", garage.s3_port));
    let db = database("s3_shards_killed", false);
    let run = "s3-killed-1";
    let coordinate = |shards: &str| {
        etl_demo(
            &db,
            &env,
            "coordinate",
            &[
                "--tables",
                "purchase_orders",
                "--range-pages",
                "8",
                "--shards",
                shards,
                "--run-name",
                run,
                "--output",
                s3_out.as_str(),
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("coordinator")
    };
    let shard = |index: &str| {
        etl_demo(
            &db,
            &env,
            "run",
            &[
                "--shard-of",
                run,
                "--shard",
                index,
                "--output",
                s3_out.as_str(),
            ],
        )
        .output()
        .expect("shard")
    };
    let mut first = coordinate("2");
    let dead_version = plan_of(&garage, run, 2).await["version"].clone();
    let output = shard("0");
    assert!(output.status.success(), "{}", text(&output));
    // The coordinator dies (SIGKILL), and its snapshot with it.
    first.kill().expect("kill the coordinator");
    let _ = first.wait();
    let output = shard("1");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("the coordinator's snapshot is gone"),
        "{}",
        text(&output)
    );
    let objects_now = objects(&garage).await;
    assert!(
        !objects_now
            .iter()
            .any(|(k, _)| k == "exports/purchase_orders/_manifest.json"),
        "the table was published"
    );
    // A new coordinator of the same name starts over on a new snapshot and version; its
    // publication removes the dead run's version, which never got a manifest.
    let second = coordinate("1");
    let plan = plan_of(&garage, run, 1).await;
    assert_ne!(plan["version"], dead_version);
    let version = plan["version"].as_str().expect("version");
    let output = shard("0");
    assert!(output.status.success(), "{}", text(&output));
    let output = second.wait_with_output().expect("coordinator");
    assert!(output.status.success(), "{}", text(&output));
    let objects_now = objects(&garage).await;
    assert_eq!(
        versions(&objects_now, "purchase_orders"),
        [format!("v={version}")]
    );
    let dir = download(&garage, PREFIX, &format!("{}-s3", db.name));
    assert_readers_agree(&db, &dir, "purchase_orders");
}

/// More abandoned multipart uploads than one listing holds (1,000): every one of an old
/// version is aborted by the next export, not only the first page.
#[tokio::test(flavor = "multi_thread")]
async fn abandoned_uploads_beyond_one_listing_are_all_aborted() {
    let garage = Garage::shared("abandoned_uploads_beyond_one_listing_are").expect("garage");
    let s3_out = output(&garage);
    let db = database("s3_abandoned_uploads", false);
    let env = garage.env_for(&garage.endpoint());
    let args = ["--tables", "notes", "--output", s3_out.as_str()];
    let first = etl_app(&db, &env, &args);
    assert!(first.status.success(), "{}", text(&first));

    let client = s3_client(&garage).await;
    let old = format!("{PREFIX}/notes/v=0000-abandoned");
    let started = futures_util::future::try_join_all((0..1_010).map(|i| {
        client
            .create_multipart_upload()
            .bucket(&garage.bucket)
            .key(format!("{old}/part-{i:05}.parquet"))
            .send()
    }))
    .await
    .expect("start the uploads");
    assert_eq!(started.len(), 1_010);
    let listed = client
        .list_multipart_uploads()
        .bucket(&garage.bucket)
        .prefix(&old)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.is_truncated(), Some(true), "more than one page");

    let second = etl_app(&db, &env, &args);
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(
        pending_uploads(&garage).await,
        0,
        "every abandoned upload aborted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn files_go_up_as_they_are_written_and_a_failed_run_publishes_none() {
    let garage = Garage::shared("files_go_up_as_they_are_written").expect("garage");
    let s3_out = output(&garage);
    let db = database("s3_as_written", false);
    let env = garage.env_for(&garage.endpoint());
    // A row this model refuses (an `infinity` date), read last: the run fails after its first
    // chunk's files were complete.
    etl_tests::postgres::psql(
        &db.url,
        "INSERT INTO purchase_orders SELECT (SELECT max(id) + 1 FROM purchase_orders), \
         gen_random_uuid(), \"type\", status, title, body, amount, conversion_rate, tax_rate, \
         quantity, is_active, tags, options, created_at, updated_at, 'infinity' \
         FROM purchase_orders ORDER BY id LIMIT 1",
    )
    .expect("a row with an infinite date");
    let args = [
        "--tables",
        "purchase_orders",
        "--output",
        s3_out.as_str(),
        "--max-file-bytes",
        "64KB",
        "--read-parallelism",
        "1",
    ];
    let failed = etl_app(&db, &env, &args);
    let message = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{message}");
    assert!(message.contains("infinity"), "{message}");
    let after_failure = objects(&garage).await;
    // Nothing is published: no manifest names a version ...
    assert!(published(&after_failure).is_empty(), "{after_failure:?}");
    // ... but the files complete before the failure went up while the table was being
    // written, into the run's own version, which no reader is pointed at.
    let uploaded_early = after_failure
        .iter()
        .filter(|(key, _)| key.contains("/purchase_orders/v=") && key.ends_with(".parquet"))
        .count();
    assert!(uploaded_early >= 2, "{after_failure:?}");

    // The next run publishes its version, and the incomplete one is gone.
    etl_tests::postgres::psql(
        &db.url,
        "DELETE FROM purchase_orders WHERE due_date = 'infinity'",
    )
    .expect("the row removed");
    let output = etl_app(&db, &env, &args);
    assert!(output.status.success(), "{}", text(&output));
    let now = objects(&garage).await;
    assert_eq!(versions(&now, "purchase_orders").len(), 1, "{now:?}");
    let dir = download(&garage, PREFIX, &format!("{}-s3", db.name));
    assert_readers_agree(&db, &dir, "purchase_orders");
}
