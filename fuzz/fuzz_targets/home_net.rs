//! Fuzz the parsers of what the relay reads from its home network and
//! disk (issue 13): PCP responses (RFC 6887: MAP, ANNOUNCE, the epoch
//! check), NAT-PMP replies (RFC 6886), dyndns2 answers, the
//! procfs address and route tables, UPnP-IGD (SSDP answers, device
//! descriptions, SOAP answers), and the stored ACME certificate file.
//! Arbitrary bytes must give a value or an error, never a panic.
//!
//! cargo +nightly fuzz run home_net
#![no_main]

use chatrelay::ddns::{addresses, proto};
use chatrelay::natpmp::pcp;
use chatrelay::router::{gateway, natpmp, upnp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // PCP: the nonce, protocol and port of the request come from the input
    // itself (so the fuzzer can reach the success path) and from fixed ones.
    if data.len() >= 44 {
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&data[24..36]);
        let port = u16::from_be_bytes([data[40], data[41]]);
        if let Ok(m) = pcp::parse_map(data, &nonce, data[36], port) {
            assert!(data.len() >= 60 && data.len() <= pcp::MAX_MESSAGE && data.len() % 4 == 0);
            assert_eq!(m.internal, port);
            assert_eq!(data[0], pcp::VERSION);
        }
    }
    let _ = pcp::parse_map(data, &[7; 12], pcp::PROTO_TCP, 993);
    if pcp::parse_announce(data).is_ok() {
        assert!(data.len() >= 24);
    }
    if data.len() >= 16 {
        let n = |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        let prev = pcp::Epoch {
            server: n(0),
            client: u64::from(n(4)),
        };
        let _ = pcp::epoch_valid(prev, n(8), u64::from(n(12)) << 8);
    }
    let _ = chatrelay::doctor::mapping::parse_line(&String::from_utf8_lossy(data));
    let _ = natpmp::parse_external_address(data);
    for p in [natpmp::Proto::Tcp, natpmp::Proto::Udp] {
        if let Ok(m) = natpmp::parse_map(data, p) {
            assert!(data.len() >= 16);
            assert_eq!(m.internal, u16::from_be_bytes([data[8], data[9]]));
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = proto::parse(&text);
    for a in addresses::parse(&text) {
        assert!(!a.is_loopback());
    }
    let _ = gateway::parse(&text);
    let _ = upnp::ssdp_location(&text);
    let _ = upnp::wan_service(&text, "http://10.0.0.1:5000/rootDesc.xml");
    let _ = upnp::soap_result(200, &text);
    let _ = upnp::soap_result(500, &text);
    let _ = upnp::external_ip(&text);
    let _ = upnp::split_http_url(&text);
    let _ = chatrelay::tls::store::parse_issued(&text);
});
