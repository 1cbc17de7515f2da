//! `etl-app`: exports the models registered in `models/` (written by `cargo xtask gen`) and
//! the tasks of `tasks/`. The command line is the library's (`lib.rs`), compiled once. The
//! demo's models and tasks are a binary of their own (`demo/`, `etl-demo`).

mod models;
mod tasks;

fn main() -> std::process::ExitCode {
    let mut registry = models::registry();
    registry.extend(tasks::exports());
    etl_app::main(registry)
}
