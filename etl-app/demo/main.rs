//! `etl-demo`: `etl-app` over the demo's tables (`xtask/sql/demo.sql`), for `cargo xtask demo`,
//! the tests and the bench. Its models (`demo/models/`, written by `cargo xtask gen`) and tasks
//! (`demo/tasks/`, by hand) are kept apart from your own in `src/models/` and `src/tasks/`, so
//! that `etl-app` exports only the tables you generated.

mod models;
mod tasks;

fn main() -> std::process::ExitCode {
    let mut registry = models::registry();
    registry.extend(tasks::exports());
    etl_app::main(registry)
}
