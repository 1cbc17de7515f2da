//! Reading one table through several connections: ctid block ranges (TID Range Scans,
//! PostgreSQL 14 and later), handed out one at a time as connections free up, every
//! connection on the run's snapshot; a partitioned table leaf by leaf. Where ranges cannot
//! work, the plan is one stream and says why.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{Postgres, Transaction};

use crate::error::{Error, Result};
use crate::model::TableInfo;

/// The first PostgreSQL version (`server_version_num`) that plans `ctid >= ... AND ctid < ...`
/// as a TID Range Scan; before it the same condition is a full scan per range.
const TID_RANGE_SCANS_SINCE: i32 = 140_000;

/// How many connections read one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadParallelism {
    /// Up to this many, fewer for a table of few ranges.
    Auto { max: usize },
    /// This many (`--read-parallelism N`); a table of fewer ranges uses fewer.
    Connections(usize),
}

impl ReadParallelism {
    /// The most connections a table may use: what the pool must hold per table.
    pub fn max(self) -> usize {
        match self {
            ReadParallelism::Auto { max } | ReadParallelism::Connections(max) => max.max(1),
        }
    }
}

/// How tables are read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub parallelism: ReadParallelism,
    /// Pages (8 KB) per range: small enough that a bloated region is shared out, large enough
    /// that a statement per range costs nothing (DuckDB's postgres scanner uses 1,000).
    pub range_pages: u64,
    /// Plan as if the server were this `server_version_num`: how the tests exercise the path
    /// of servers without TID Range Scans on a server that has them.
    pub assume_server_version: Option<i32>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            parallelism: ReadParallelism::Connections(1),
            range_pages: 1024,
            assume_server_version: None,
        }
    }
}

/// What one COPY statement reads: a relation, or a block range of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReadRange {
    /// The relation in SQL: the model's table, or `ONLY` one leaf of a partitioned table.
    pub relation: String,
    /// First block, and the block it stops before (None: to the end of the relation, wherever
    /// that is when the range is read).
    pub blocks: Option<(u64, Option<u64>)>,
}

impl ReadRange {
    /// `COPY (SELECT ... [WHERE ...]) TO STDOUT (FORMAT binary)` for this range, with `filter`
    /// (an incremental batch's condition) if any.
    pub fn copy_sql(&self, info: &TableInfo, filter: Option<&str>) -> String {
        let mut conditions: Vec<String> = Vec::new();
        if let Some((start, end)) = self.blocks {
            // Block numbers only, never input: the SQL is built from integers.
            conditions.push(format!("ctid >= '({start},0)'::tid"));
            if let Some(end) = end {
                conditions.push(format!("ctid < '({end},0)'::tid"));
            }
        }
        if let Some(filter) = filter {
            conditions.push(format!("({filter})"));
        }
        let select = info.select_from_sql(&self.relation);
        // COPY's binary format is the cheapest way out of PostgreSQL for the server and for
        // us: one message per row, decoded in place by the generated encoder.
        if conditions.is_empty() {
            format!("COPY ({select}) TO STDOUT (FORMAT binary)")
        } else {
            format!(
                "COPY ({select} WHERE {}) TO STDOUT (FORMAT binary)",
                conditions.join(" AND ")
            )
        }
    }
}

/// How a table is read: its ranges, by how many connections, and, when it is one stream
/// although more were asked for, why.
#[derive(Debug)]
pub struct ReadPlan {
    ranges: Vec<ReadRange>,
    next: AtomicUsize,
    pub connections: usize,
    pub single_stream_reason: Option<String>,
}

impl ReadPlan {
    /// The whole table on one stream.
    pub fn single(info: &TableInfo, reason: Option<String>) -> Self {
        Self {
            ranges: vec![ReadRange {
                relation: info.qualified_sql(),
                blocks: None,
            }],
            next: AtomicUsize::new(0),
            connections: 1,
            single_stream_reason: reason,
        }
    }

    /// `ranges` (a shard's share of a table), read by up to `connections` connections.
    pub fn given(ranges: Vec<ReadRange>, connections: usize) -> Self {
        Self {
            connections: connections.min(ranges.len()).max(1),
            ranges,
            next: AtomicUsize::new(0),
            single_stream_reason: None,
        }
    }

    /// The next range nobody has taken, if any: connections take them as they free up.
    pub fn next_range(&self) -> Option<&ReadRange> {
        self.ranges.get(self.next.fetch_add(1, Ordering::Relaxed))
    }

    pub fn ranges(&self) -> &[ReadRange] {
        &self.ranges
    }

    /// Plans the read of `info`'s table on `tx` (a transaction on the run's snapshot).
    /// `reason_not_to_split`: what already rules ranges out (no snapshot, an incremental
    /// batch).
    pub async fn plan(
        tx: &mut Transaction<'static, Postgres>,
        info: &TableInfo,
        options: &ReadOptions,
        reason_not_to_split: Option<&str>,
        max_connections: usize,
    ) -> Result<Self> {
        let wanted = options.parallelism.max().min(max_connections);
        if wanted <= 1 {
            return Ok(Self::single(info, None));
        }
        if let Some(reason) = reason_not_to_split {
            return Ok(Self::single(info, Some(reason.to_string())));
        }
        let db = |source| Error::Database {
            context: "cannot plan the table's block ranges",
            source,
        };
        let (version, in_recovery): (i32, bool) = sqlx::query_as(
            "SELECT current_setting('server_version_num')::int4, pg_is_in_recovery()",
        )
        .fetch_one(&mut **tx)
        .await
        .map_err(db)?;
        let version = options.assume_server_version.unwrap_or(version);
        let relations: Vec<Relation> =
            sqlx::query_as::<_, (String, bool, String, Option<String>, Option<i64>)>(RELATIONS_SQL)
                .bind(info.qualified_sql())
                .fetch_all(&mut **tx)
                .await
                .map_err(db)?
                .into_iter()
                .map(|(name, leaf, relkind, access_method, blocks)| Relation {
                    name,
                    leaf,
                    relkind,
                    access_method,
                    blocks,
                })
                .collect();
        let server = Server {
            version,
            in_recovery,
        };
        let mut plan = plan_ranges(info, options, &server, &relations);
        plan.connections = plan.connections.min(wanted);
        Ok(plan)
    }
}

/// The table, or the leaves of a partitioned table, with their kind, access method and size
/// in blocks now (a table only grows past that with rows the run's snapshot cannot see).
const RELATIONS_SQL: &str = "\
    WITH t AS (SELECT to_regclass($1) AS oid), \
    rels AS ( \
      SELECT c.oid, false AS leaf FROM pg_class c, t WHERE c.oid = t.oid AND c.relkind <> 'p' \
      UNION ALL \
      SELECT p.relid, true FROM t, pg_partition_tree(t.oid) p \
        JOIN pg_class c ON c.oid = p.relid \
        WHERE p.isleaf AND (SELECT relkind FROM pg_class WHERE oid = t.oid) = 'p') \
    SELECT rels.oid::regclass::text, rels.leaf, c.relkind::text, am.amname::text, \
      (CASE WHEN c.relkind IN ('r', 'm', 't') \
        THEN pg_relation_size(rels.oid) / current_setting('block_size')::int8 END)::int8 \
    FROM rels JOIN pg_class c ON c.oid = rels.oid LEFT JOIN pg_am am ON am.oid = c.relam \
    ORDER BY 1";

/// What the planner needs to know of the server.
struct Server {
    version: i32,
    in_recovery: bool,
}

/// One relation to read: the table, or a leaf of it.
#[derive(Debug)]
struct Relation {
    /// As `regclass` prints it: quoted, and schema-qualified unless on the search path.
    name: String,
    /// A leaf of a partitioned table (read with `ONLY`).
    leaf: bool,
    relkind: String,
    access_method: Option<String>,
    blocks: Option<i64>,
}

impl Relation {
    fn sql(&self) -> String {
        if self.leaf {
            format!("ONLY {}", self.name)
        } else {
            self.name.clone()
        }
    }

    /// Why block ranges cannot read it, if they cannot.
    fn not_rangeable(&self) -> Option<String> {
        match (self.relkind.as_str(), self.access_method.as_deref()) {
            ("r" | "m", Some("heap")) => None,
            ("r" | "m", Some(other)) => Some(format!(
                "{} uses the table access method `{other}`, which has no TID range scans",
                self.name
            )),
            ("v", _) => Some(format!("{} is a view: it has no blocks", self.name)),
            ("f", _) => Some(format!(
                "{} is a foreign table: it has no blocks",
                self.name
            )),
            (kind, _) => Some(format!(
                "{} (relkind `{kind}`) has no blocks to read by range",
                self.name
            )),
        }
    }
}

fn plan_ranges(
    info: &TableInfo,
    options: &ReadOptions,
    server: &Server,
    relations: &[Relation],
) -> ReadPlan {
    let single = |reason: String| ReadPlan::single(info, Some(reason));
    if server.version < TID_RANGE_SCANS_SINCE {
        return single(format!(
            "PostgreSQL {}.{} has no TID Range Scans (version 14 or later reads a table by \
             block ranges)",
            server.version / 10_000,
            server.version % 10_000 / 100
        ));
    }
    if server.in_recovery {
        // A snapshot exported during recovery can lose its list of running transactions when
        // it overflowed, and an importer then sees rows of uncommitted transactions (fixed in
        // PostgreSQL only in 2026): on a standby, one stream reads the exporter's snapshot.
        return single(
            "the server is a standby (in recovery): ranges need an imported snapshot, which a \
             standby cannot export reliably"
                .to_string(),
        );
    }
    let Some(first) = relations.first() else {
        return single(format!(
            "{} is not in pg_class: nothing to plan",
            info.display_name()
        ));
    };
    if relations.len() == 1
        && !first.leaf
        && let Some(reason) = first.not_rangeable()
    {
        return single(reason);
    }
    let step = options.range_pages.max(1);
    let mut ranges = Vec::new();
    for relation in relations {
        let blocks = relation.blocks.map_or(0, |b| b.max(0) as u64);
        if relation.not_rangeable().is_some() {
            // A foreign or non-heap leaf is read whole, by one connection.
            ranges.push(ReadRange {
                relation: relation.sql(),
                blocks: None,
            });
            continue;
        }
        let mut start = 0;
        loop {
            let end = start + step;
            if end >= blocks {
                // The last range of a relation reaches its end, however it has grown.
                ranges.push(ReadRange {
                    relation: relation.sql(),
                    blocks: Some((start, None)),
                });
                break;
            }
            ranges.push(ReadRange {
                relation: relation.sql(),
                blocks: Some((start, Some(end))),
            });
            start = end;
        }
    }
    let connections = match options.parallelism {
        ReadParallelism::Auto { max } | ReadParallelism::Connections(max) => {
            max.min(ranges.len()).max(1)
        }
    };
    ReadPlan {
        ranges,
        next: AtomicUsize::new(0),
        connections,
        single_stream_reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: TableInfo = TableInfo {
        schema: "public",
        name: "orders",
        ..TableInfo::STUB
    };

    fn table(blocks: i64) -> Relation {
        Relation {
            name: "orders".into(),
            leaf: false,
            relkind: "r".into(),
            access_method: Some("heap".into()),
            blocks: Some(blocks),
        }
    }

    fn options(connections: usize) -> ReadOptions {
        ReadOptions {
            parallelism: ReadParallelism::Connections(connections),
            range_pages: 100,
            assume_server_version: None,
        }
    }

    const PG15: Server = Server {
        version: 150_004,
        in_recovery: false,
    };

    #[test]
    fn ranges_cover_every_block_and_the_last_reaches_the_end() {
        let plan = plan_ranges(&INFO, &options(2), &PG15, &[table(250)]);
        let blocks: Vec<_> = plan.ranges().iter().map(|r| r.blocks).collect();
        assert_eq!(
            blocks,
            [
                Some((0, Some(100))),
                Some((100, Some(200))),
                Some((200, None))
            ]
        );
        assert_eq!(plan.connections, 2);
        // An empty table is one open range, read by one connection.
        let plan = plan_ranges(&INFO, &options(4), &PG15, &[table(0)]);
        assert_eq!(plan.ranges().len(), 1);
        assert_eq!(plan.connections, 1);
    }

    #[test]
    fn servers_without_tid_range_scans_and_standbys_read_one_stream() {
        let old = Server {
            version: 130_011,
            in_recovery: false,
        };
        let plan = plan_ranges(&INFO, &options(2), &old, &[table(250)]);
        assert_eq!(plan.connections, 1);
        assert!(
            plan.single_stream_reason
                .as_deref()
                .is_some_and(|r| r.contains("PostgreSQL 13.0 has no TID Range Scans")),
            "{plan:?}"
        );
        let standby = Server {
            version: 150_004,
            in_recovery: true,
        };
        let plan = plan_ranges(&INFO, &options(2), &standby, &[table(250)]);
        assert!(plan.single_stream_reason.unwrap().contains("standby"));
    }

    #[test]
    fn leaves_are_read_with_only_and_foreign_leaves_whole() {
        let leaves = [
            Relation {
                name: "orders_2024".into(),
                leaf: true,
                ..table(150)
            },
            Relation {
                name: "orders_remote".into(),
                leaf: true,
                relkind: "f".into(),
                access_method: None,
                blocks: None,
            },
        ];
        let plan = plan_ranges(&INFO, &options(2), &PG15, &leaves);
        let ranges: Vec<_> = plan
            .ranges()
            .iter()
            .map(|r| (r.relation.as_str(), r.blocks))
            .collect();
        assert_eq!(
            ranges,
            [
                ("ONLY orders_2024", Some((0, Some(100)))),
                ("ONLY orders_2024", Some((100, None))),
                ("ONLY orders_remote", None),
            ]
        );
        assert_eq!(
            plan.ranges()[0].copy_sql(&INFO, Some("x > 1")),
            "COPY (SELECT  FROM ONLY orders_2024 WHERE ctid >= '(0,0)'::tid AND \
             ctid < '(100,0)'::tid AND (x > 1)) TO STDOUT (FORMAT binary)"
        );
    }

    #[test]
    fn a_view_is_read_on_one_stream_and_says_why() {
        let view = Relation {
            relkind: "v".into(),
            access_method: None,
            blocks: None,
            ..table(0)
        };
        let plan = plan_ranges(&INFO, &options(2), &PG15, &[view]);
        assert_eq!(plan.connections, 1);
        assert!(plan.single_stream_reason.unwrap().contains("view"));
    }
}
