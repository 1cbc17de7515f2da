//! `gen --check`: every model of a directory regenerated in memory, by the command its header
//! records, and compared with the committed file as a parsed model (see [`ParsedModel`]).

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::catalog::introspect;
use super::parse::ParsedModel;
use super::{GenArgs, GenCommand, connect};

/// Reports each model of `args.models_dir` that differs from the live database, and how.
/// Returns the number of differing models.
pub async fn check(args: &GenArgs) -> Result<usize> {
    let pool = connect(&args.database_url).await?;
    let mut differences = 0;
    let mut files: Vec<PathBuf> = fs::read_dir(&args.models_dir)
        .with_context(|| format!("cannot read {}", args.models_dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    for path in files {
        if path.extension().is_none_or(|e| e != "rs")
            || path.file_stem().is_some_and(|s| s == "mod")
        {
            continue;
        }
        let committed = fs::read_to_string(&path)?;
        let Some(command) = regenerate_command(&committed) else {
            continue;
        };
        let mut argv = vec!["gen".to_string()];
        argv.extend(command.split_whitespace().map(str::to_string));
        argv.extend(["--database-url".to_string(), args.database_url.clone()]);
        let regen = <GenCommand as clap::Parser>::try_parse_from(&argv)
            .with_context(|| {
                format!(
                    "{}: unreadable Regenerate command `{command}`",
                    path.display()
                )
            })?
            .args;
        let (schema, table) = (
            regen.schema.as_str(),
            regen.table.as_deref().unwrap_or_default(),
        );
        let live = match introspect(&pool, schema, table).await {
            Ok(mut def) => super::model_source(&mut def, &regen)?,
            Err(e) => {
                differences += 1;
                println!(
                    "{}: {e}; if the table was dropped, remove its model with `cargo xtask gen --remove {}`",
                    path.display(),
                    if schema == "public" {
                        table.to_string()
                    } else {
                        format!("{schema}.{table}")
                    }
                );
                continue;
            }
        };
        let parse = |source: &str, what: &str| -> Result<Option<ParsedModel>> {
            ParsedModel::parse(source)
                .with_context(|| format!("{}: cannot read the {what} model", path.display()))
        };
        let (Some(model), Some(live)) = (parse(&committed, "committed")?, parse(&live, "live")?)
        else {
            continue;
        };
        let lines = model.differences(&live);
        if !lines.is_empty() {
            differences += 1;
            println!("{} differs from {schema}.{table}:", path.display());
            for line in lines {
                println!("  {line}");
            }
        }
    }
    pool.close().await;
    Ok(differences)
}

/// `--table x --columns a,b` from a model's header line.
fn regenerate_command(text: &str) -> Option<String> {
    let header = text.lines().next()?;
    let start =
        header.find("Regenerate: `cargo xtask gen ")? + "Regenerate: `cargo xtask gen ".len();
    let end = header[start..].find('`')? + start;
    Some(header[start..end].to_string())
}
