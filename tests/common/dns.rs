//! A real DNS server on loopback UDP for discovery tests: answers A, AAAA
//! and SRV queries from a zone the test fills in, and counts the queries so
//! tests can tell a cached answer from a fresh one.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use hickory_resolver::proto::{
    op::{Message, MessageType, ResponseCode},
    rr::{
        rdata::{A, AAAA, SOA, SRV},
        Name, RData, Record, RecordType,
    },
};

type Zone = HashMap<(String, RecordType), Vec<RData>>;

pub struct TestDns {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl TestDns {
    pub fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind DNS");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let zone: Arc<Mutex<Zone>> = Arc::default();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (z, q, s) = (zone.clone(), queries.clone(), stop.clone());
        std::thread::spawn(move || serve(socket, z, q, s));
        Self {
            addr,
            zone,
            queries,
            stop,
        }
    }

    /// `HEARTH_FEDERATION__NAMESERVERS` pointing at this server.
    pub fn env(&self) -> (&'static str, String) {
        (
            "HEARTH_FEDERATION__NAMESERVERS",
            format!("[\"{}\"]", self.addr),
        )
    }

    pub fn add_ip(&self, name: &str, ip: IpAddr) {
        let (kind, data) = match ip {
            IpAddr::V4(v4) => (RecordType::A, RData::A(A(v4))),
            IpAddr::V6(v6) => (RecordType::AAAA, RData::AAAA(AAAA(v6))),
        };
        self.zone
            .lock()
            .expect("zone")
            .entry((key(name), kind))
            .or_default()
            .push(data);
    }

    /// `target` "." means "no service here".
    pub fn add_srv(&self, name: &str, priority: u16, port: u16, target: &str) {
        let target =
            Name::from_ascii(format!("{}.", target.trim_end_matches('.'))).expect("target");
        let data = RData::SRV(SRV::new(priority, 10, port, target));
        self.zone
            .lock()
            .expect("zone")
            .entry((key(name), RecordType::SRV))
            .or_default()
            .push(data);
    }

    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn negative_soa() -> Record {
    let root = |n: &str| Name::from_ascii(n).expect("name");
    let soa = SOA::new(
        root("ns.hearth.test."),
        root("admin.hearth.test."),
        1,
        3600,
        600,
        86400,
        300,
    );
    Record::from_rdata(root("hearth.test."), 300, RData::SOA(soa))
}

fn serve(
    socket: UdpSocket,
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let Ok((len, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok(request) = Message::from_vec(&buf[..len]) else {
            continue;
        };
        queries.fetch_add(1, Ordering::SeqCst);
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.authoritative = true;
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        let zone = zone.lock().expect("zone");
        for query in &request.queries {
            response.add_query(query.clone());
            let name = key(&query.name.to_ascii());
            match zone.get(&(name.clone(), query.query_type)) {
                Some(records) => {
                    for data in records {
                        response.add_answer(Record::from_rdata(
                            query.name.clone(),
                            300,
                            data.clone(),
                        ));
                    }
                }
                None => {
                    if !zone.keys().any(|(n, _)| *n == name) {
                        response.metadata.response_code = ResponseCode::NXDomain;
                    }
                    // Negative answers carry the zone's SOA, so resolvers may cache them.
                    response.add_authority(negative_soa());
                }
            }
        }
        drop(zone);
        debug_assert_eq!(response.metadata.message_type, MessageType::Response);
        if let Ok(bytes) = response.to_vec() {
            let _ = socket.send_to(&bytes, peer);
        }
    }
}
