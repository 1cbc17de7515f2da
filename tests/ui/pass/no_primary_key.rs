use etl_runtime::EtlTable;

#[derive(Debug, EtlTable)]
#[etl(table = "audit_log", no_primary_key)]
pub struct AuditEntry {
    pub at: chrono::NaiveDateTime,
    pub message: String,
}

fn main() {
    use etl_runtime::EtlTable as _;
    assert!(AuditEntry::INFO.primary_key.is_empty());
}
