//! Fuzz the parsers of what the relay reads from its home network and
//! disk (issue 13): NAT-PMP replies (RFC 6886), dyndns2 answers, the
//! procfs address and route tables, UPnP-IGD (SSDP answers, device
//! descriptions, SOAP answers), and the stored ACME certificate file.
//! Arbitrary bytes must give a value or an error, never a panic.
//!
//! cargo +nightly fuzz run home_net
#![no_main]

use chatrelay::ddns::{addresses, proto};
use chatrelay::router::{gateway, natpmp, upnp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
