//! A masked column is written as its hash: each way of asking for something else is one error
//! at the attribute that asks.
use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "people", primary_key(id))]
pub struct UnknownMask {
    pub id: i64,
    #[etl(mask = "md5")]
    pub email: String,
}

#[derive(EtlTable)]
#[etl(table = "people", primary_key(id))]
pub struct MaskAndNumeric {
    pub id: i64,
    #[etl(sql_type = "numeric(12,2)", numeric = "string", mask = "hmac_sha256")]
    pub salary: String,
}

#[derive(EtlTable)]
#[etl(table = "people", primary_key(id))]
pub struct MaskedFieldNotString {
    pub id: i64,
    #[etl(mask = "hmac_sha256")]
    pub age: i32,
}

#[derive(EtlTable)]
#[etl(table = "people", primary_key(id), partition_by = "country")]
pub struct PartitionedByMasked {
    pub id: i64,
    #[etl(mask = "hmac_sha256")]
    pub country: String,
}

#[derive(EtlTable)]
#[etl(output)]
pub struct MaskedOutput {
    #[etl(mask = "hmac_sha256")]
    pub email: String,
}

#[derive(EtlTable)]
#[etl(table = "people", primary_key(id), omit = "email, ssn, ssn")]
pub struct OmitsAField {
    pub id: i64,
    pub email: String,
}

fn main() {}
