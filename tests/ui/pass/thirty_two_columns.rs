use etl_runtime::EtlTable;

#[derive(Debug, EtlTable)]
#[etl(table = "wide", primary_key(c01))]
pub struct Wide {
    pub c01: i64, pub c02: i64, pub c03: i64, pub c04: i64, pub c05: i64, pub c06: i64,
    pub c07: i64, pub c08: i64, pub c09: i64, pub c10: i64, pub c11: i64, pub c12: i64,
    pub c13: i64, pub c14: i64, pub c15: i64, pub c16: i64, pub c17: i64, pub c18: i64,
    pub c19: i64, pub c20: i64, pub c21: i64, pub c22: i64, pub c23: i64, pub c24: i64,
    pub c25: i64, pub c26: i64, pub c27: i64, pub c28: i64, pub c29: i64, pub c30: i64,
    pub c31: i64, pub c32: i64,
}

fn main() {}
