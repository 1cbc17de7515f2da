use etl_runtime::EtlTable;

#[derive(EtlTable)]
#[etl(table = "hosts", primary_key(id))]
pub struct Host {
    pub id: i64,
    pub address: std::net::IpAddr,
}

fn main() {}
