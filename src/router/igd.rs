//! UPnP-IGD over the network: SSDP search, the device description, SOAP
//! calls (plain HTTP/1.1 on the LAN), each with a deadline and a bounded
//! answer. Used when the router does not speak NAT-PMP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};

use super::upnp;

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ANSWER: usize = 64 * 1024;
const SEARCH_TIME: Duration = Duration::from_secs(3);

/// A router found by SSDP: its WAN connection service.
#[derive(Debug, Clone)]
pub struct Igd {
    pub service: String,
    pub control: String,
    /// Our address as the router sees it (the mapping's internal client).
    pub local: Ipv4Addr,
}

/// One HTTP/1.1 request; (status, body).
async fn http(
    url: &str,
    method: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Result<(u16, String, Ipv4Addr), String> {
    let (host, port, path) = upnp::split_http_url(url).ok_or("bad URL")?;
    let ip: Ipv4Addr = host
        .parse()
        .map_err(|_| format!("not an IPv4 address: {host}"))?;
    let io = async {
        let mut tcp = async_net::TcpStream::connect(SocketAddr::from((ip, port))).await?;
        let local = match tcp.local_addr()?.ip() {
            IpAddr::V4(a) => a,
            IpAddr::V6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        tcp.write_all(req.as_bytes()).await?;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await?;
            if n == 0 || out.len() > MAX_ANSWER {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>((out, local))
    };
    let (out, local) = crate::net::timeout(HTTP_TIMEOUT, io)
        .await
        .ok_or("no answer in time")?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .filter(|_| text.starts_with("HTTP/1."))
        .ok_or("not an HTTP answer")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body, local))
}

/// SSDP search (both IGD versions), then the first description that has a
/// WAN connection service.
pub async fn discover() -> Option<Igd> {
    let sock = async_net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .await
        .ok()?;
    for st in upnp::SEARCH_TARGETS {
        let _ = sock
            .send_to(upnp::msearch(st).as_bytes(), upnp::SSDP_ADDR)
            .await;
    }
    let deadline = std::time::Instant::now() + SEARCH_TIME;
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Some(Ok((n, _))) = crate::net::timeout(left, sock.recv_from(&mut buf)).await else {
            break;
        };
        let Some(loc) = upnp::ssdp_location(&String::from_utf8_lossy(&buf[..n])) else {
            continue;
        };
        if seen.contains(&loc) || seen.len() >= 8 {
            continue;
        }
        seen.push(loc.clone());
        let Ok((200, desc, local)) = http(&loc, "GET", &[], "").await else {
            continue;
        };
        if let Some((service, control)) = upnp::wan_service(&desc, &loc) {
            return Some(Igd {
                service,
                control,
                local,
            });
        }
    }
    None
}

async fn call(igd: &Igd, (body, action): (String, String)) -> Result<String, u32> {
    let headers = [
        ("Content-Type", "text/xml; charset=\"utf-8\"".to_string()),
        ("SOAPAction", action),
    ];
    match http(&igd.control, "POST", &headers, &body).await {
        Ok((status, body, _)) => upnp::soap_result(status, &body),
        Err(_) => Err(0),
    }
}

pub async fn external_ip(igd: &Igd) -> Option<Ipv4Addr> {
    upnp::external_ip(&call(igd, upnp::get_external_ip(&igd.service)).await.ok()?)
}

pub async fn add(igd: &Igd, proto: &str, port: u16, lease: u32) -> Result<(), u32> {
    call(
        igd,
        upnp::add_port_mapping(&igd.service, proto, port, igd.local, lease),
    )
    .await
    .map(|_| ())
}

pub async fn delete(igd: &Igd, proto: &str, port: u16) -> Result<(), u32> {
    call(igd, upnp::delete_port_mapping(&igd.service, proto, port))
        .await
        .map(|_| ())
}
