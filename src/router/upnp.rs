//! UPnP-IGD messages, no I/O: SSDP discovery (UPnP Device Architecture
//! 1.1 §1.3.2), the device description's WAN connection service (IGD:1
//! and IGD:2, WANIPConnection:1/2 or WANPPPConnection:1), and the SOAP
//! actions AddPortMapping, DeletePortMapping and GetExternalIPAddress of
//! WANIPConnection:2 §2.4. Parsing is by bounded string search, enough for
//! these small documents; hostile input gives `None`/`Err`, never a panic.

use std::net::Ipv4Addr;

pub const SSDP_ADDR: (Ipv4Addr, u16) = (Ipv4Addr::new(239, 255, 255, 250), 1900);

/// M-SEARCH for IGD devices (one request per version).
pub fn msearch(st: &str) -> String {
    format!(
        "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\nST: {st}\r\n\r\n"
    )
}

pub const SEARCH_TARGETS: [&str; 2] = [
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
];

/// `LOCATION:` of an SSDP answer, when it is a plain `http://` URL.
pub fn ssdp_location(resp: &str) -> Option<String> {
    if !resp.starts_with("HTTP/1.1 200") {
        return None;
    }
    resp.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim().eq_ignore_ascii_case("location") && v.trim().starts_with("http://"))
            .then(|| v.trim().to_string())
    })
}

/// `http://host:port/path` → (host, port, path).
pub fn split_http_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (hp, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (h, p) = match hp.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hp, 80),
    };
    if h.is_empty() {
        return None;
    }
    Some((h.to_string(), p, path.to_string()))
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let i = s.find(open)? + open.len();
    let j = s[i..].find(close)? + i;
    Some(&s[i..j])
}

/// The WAN connection service of a device description: (service type,
/// control URL made absolute against `base`).
pub fn wan_service(desc: &str, base: &str) -> Option<(String, String)> {
    const TYPES: [&str; 3] = [
        "urn:schemas-upnp-org:service:WANIPConnection:2",
        "urn:schemas-upnp-org:service:WANIPConnection:1",
        "urn:schemas-upnp-org:service:WANPPPConnection:1",
    ];
    let mut rest = desc;
    let mut found: Vec<(usize, String, String)> = Vec::new();
    for _ in 0..64 {
        let Some(block) = between(rest, "<service>", "</service>") else {
            break;
        };
        let ty = between(block, "<serviceType>", "</serviceType>").map(str::trim);
        let ctl = between(block, "<controlURL>", "</controlURL>").map(str::trim);
        if let (Some(ty), Some(ctl)) = (ty, ctl) {
            if let Some(rank) = TYPES.iter().position(|t| *t == ty) {
                found.push((rank, ty.to_string(), ctl.to_string()));
            }
        }
        let end = rest.find("</service>").map(|i| i + "</service>".len())?;
        rest = &rest[end..];
    }
    found.sort_by_key(|f| f.0);
    let (_, ty, ctl) = found.into_iter().next()?;
    let url = if ctl.starts_with("http://") {
        ctl
    } else {
        let (h, p, _) = split_http_url(base)?;
        format!("http://{h}:{p}/{}", ctl.trim_start_matches('/'))
    };
    Some((ty, url))
}

/// SOAP request body and `SOAPAction` header value.
pub fn soap(service: &str, action: &str, args: &[(&str, String)]) -> (String, String) {
    let mut a = String::new();
    for (k, v) in args {
        a.push_str(&format!("<{k}>{v}</{k}>"));
    }
    (
        format!(
            "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>\
             <u:{action} xmlns:u=\"{service}\">{a}</u:{action}></s:Body></s:Envelope>\r\n"
        ),
        format!("\"{service}#{action}\""),
    )
}

pub fn add_port_mapping(
    service: &str,
    proto: &str,
    port: u16,
    client: Ipv4Addr,
    lease: u32,
) -> (String, String) {
    soap(
        service,
        "AddPortMapping",
        &[
            ("NewRemoteHost", String::new()),
            ("NewExternalPort", port.to_string()),
            ("NewProtocol", proto.to_string()),
            ("NewInternalPort", port.to_string()),
            ("NewInternalClient", client.to_string()),
            ("NewEnabled", "1".into()),
            ("NewPortMappingDescription", format!("chatrelay {port}")),
            ("NewLeaseDuration", lease.to_string()),
        ],
    )
}

pub fn delete_port_mapping(service: &str, proto: &str, port: u16) -> (String, String) {
    soap(
        service,
        "DeletePortMapping",
        &[
            ("NewRemoteHost", String::new()),
            ("NewExternalPort", port.to_string()),
            ("NewProtocol", proto.to_string()),
        ],
    )
}

pub fn get_external_ip(service: &str) -> (String, String) {
    soap(service, "GetExternalIPAddress", &[])
}

/// A SOAP answer: `Ok(body)` for HTTP 200, `Err(code)` for a UPnP fault
/// (`<errorCode>`; 718 = ConflictInMappingEntry), `Err(0)` for anything else.
pub fn soap_result(status: u16, body: &str) -> Result<String, u32> {
    if status == 200 && !body.contains("Fault>") {
        return Ok(body.to_string());
    }
    Err(between(body, "<errorCode>", "</errorCode>")
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(0))
}

pub fn external_ip(body: &str) -> Option<Ipv4Addr> {
    between(body, "<NewExternalIPAddress>", "</NewExternalIPAddress>")?
        .trim()
        .parse()
        .ok()
}

pub fn fault_text(code: u32) -> String {
    match code {
        718 => "718 ConflictInMappingEntry (another device holds this port)".into(),
        725 => "725 OnlyPermanentLeasesSupported".into(),
        606 => "606 Action not authorized".into(),
        0 => "no valid SOAP answer".into(),
        n => format!("UPnP error {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESC: &str = "<root><device><serviceList>\
        <service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><controlURL>/ctl/L3F</controlURL></service>\
        <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl/IPConn1</controlURL></service>\
        <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>/ctl/IPConn</controlURL></service>\
        </serviceList></device></root>";

    #[test]
    fn discovery_and_description() {
        let r = "HTTP/1.1 200 OK\r\nST: x\r\nLocation: http://10.0.0.1:5000/rootDesc.xml\r\n\r\n";
        assert_eq!(
            ssdp_location(r).as_deref(),
            Some("http://10.0.0.1:5000/rootDesc.xml")
        );
        assert_eq!(ssdp_location("NOTIFY * HTTP/1.1\r\n\r\n"), None);
        assert_eq!(
            wan_service(DESC, "http://10.0.0.1:5000/rootDesc.xml"),
            Some((
                "urn:schemas-upnp-org:service:WANIPConnection:2".into(),
                "http://10.0.0.1:5000/ctl/IPConn".into()
            ))
        );
        assert_eq!(wan_service("<service><serviceType>", "http://a/"), None);
        assert_eq!(
            split_http_url("http://a:99/x"),
            Some(("a".into(), 99, "/x".into()))
        );
        assert_eq!(split_http_url("http://:1/"), None);
    }

    #[test]
    fn soap_answers() {
        let fault =
            "<s:Fault><detail><UPnPError><errorCode>718</errorCode></UPnPError></detail></s:Fault>";
        assert_eq!(soap_result(500, fault), Err(718));
        assert_eq!(soap_result(500, "garbage"), Err(0));
        assert!(soap_result(200, "<u:AddPortMappingResponse/>").is_ok());
        assert_eq!(
            external_ip("<NewExternalIPAddress>11.13.1.2</NewExternalIPAddress>"),
            Some(Ipv4Addr::new(11, 13, 1, 2))
        );
        let (body, action) =
            add_port_mapping("urn:x:1", "TCP", 25, Ipv4Addr::new(10, 0, 0, 2), 7200);
        assert!(body.contains("<NewExternalPort>25</NewExternalPort>"));
        assert_eq!(action, "\"urn:x:1#AddPortMapping\"");
    }
}
