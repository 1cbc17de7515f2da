use etl_runtime::EtlTable;

/// A mistake in a model that is registered and used: the mistake is the only error, not one
/// more at each use of the model.
#[derive(EtlTable)]
#[etl(table = "notes", primary_key(id))]
pub struct Note {
    pub id: i64,
    #[etl(rename = "type")]
    pub type_: String,
}

#[derive(EtlTable)]
#[etl(output)]
pub struct Total {
    #[etl(sql_type = "numeric")]
    pub amount: bigdecimal::BigDecimal,
}

fn main() {
    let _ = etl_runtime::Registry::new(vec![etl_runtime::Export::table::<Note>()]);
    let _ = <Note as etl_runtime::EtlTable>::INFO.select_sql();
    let _ = <Total as etl_runtime::OutputRecord>::COLUMNS;
}
