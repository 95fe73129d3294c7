//! Our RFC 8555 request layer: the directory (§7.1.1), nonces (§7.2,
//! taken from every response's `Replay-Nonce`, a `badNonce` answer is sent
//! again with the fresh one, §6.5), signed POSTs and POST-as-GETs (§6.2,
//! §6.3, `jws`), problem documents (§6.7) turned into [`Failure`]s. Every
//! request is one HTTPS exchange (`crate::https_client::exchange`) with a
//! deadline and a size cap; the CA's name is looked up with the relay's
//! own resolver.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::jws::AccountKey;
use super::order::{fail, Failure};
use super::schedule::{classify, FailureKind};

/// Deadline of one ACME HTTPS request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Sends of one request when the CA keeps answering `badNonce`.
const NONCE_TRIES: u32 = 5;
/// Largest response read (a certificate chain is a few kB).
const MAX_RESPONSE: usize = 256 * 1024;

/// A CA's answer to a POST: status, `Location`, the JSON body (`Null` for
/// a PEM download) and the raw body.
pub struct Reply {
    pub location: Option<String>,
    pub json: Value,
    pub body: Vec<u8>,
}

pub struct Session<'a> {
    client: Arc<rustls::ClientConfig>,
    resolver: &'a crate::dns::Resolver,
    pub key: AccountKey,
    new_nonce: String,
    new_account: String,
    pub new_order: String,
    nonce: Option<String>,
    /// The account URL once known (§7.3: the `Location` of newAccount).
    kid: Option<String>,
}

/// `type: detail` of a problem document, or the start of the body.
fn problem_text(body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => (
            v["type"].as_str().unwrap_or("").to_string(),
            v["detail"].as_str().unwrap_or("").to_string(),
        ),
        Err(_) => (
            String::new(),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    }
}

impl<'a> Session<'a> {
    /// Fetch the directory (§7.1.1).
    pub async fn open(
        client: Arc<rustls::ClientConfig>,
        resolver: &'a crate::dns::Resolver,
        directory: &str,
        key: AccountKey,
    ) -> Result<Session<'a>, Failure> {
        let mut s = Session {
            client,
            resolver,
            key,
            new_nonce: String::new(),
            new_account: String::new(),
            new_order: String::new(),
            nonce: None,
            kid: None,
        };
        let r = s.http("directory", "GET", directory, None, false).await?;
        if r.status != 200 {
            return Err(s.error("directory", r.status, &r.body));
        }
        let v: Value = serde_json::from_slice(&r.body)
            .map_err(|e| fail(FailureKind::Transient, format!("directory: not JSON: {e}")))?;
        let url = |k: &str| {
            v[k].as_str()
                .filter(|u| u.starts_with("https://"))
                .map(str::to_string)
                .ok_or_else(|| fail(FailureKind::Transient, format!("directory: no {k}")))
        };
        s.new_nonce = url("newNonce")?;
        s.new_account = url("newAccount")?;
        s.new_order = url("newOrder")?;
        Ok(s)
    }

    /// The CA's address: an IP literal as it is, else the relay's resolver
    /// (A first, then AAAA).
    async fn addr(&self, step: &str, host: &str, port: u16) -> Result<SocketAddr, Failure> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        if let Ok(v) = self.resolver.ipv4(host).await {
            if let Some(a) = v.first() {
                return Ok(SocketAddr::new(IpAddr::V4(*a), port));
            }
        }
        match self.resolver.ipv6(host).await {
            Ok(v) if !v.is_empty() => Ok(SocketAddr::new(IpAddr::V6(v[0]), port)),
            _ => Err(fail(
                FailureKind::Transient,
                format!("{step}: cannot resolve {host}"),
            )),
        }
    }

    async fn http(
        &self,
        step: &str,
        method: &str,
        url: &str,
        body: Option<String>,
        pem: bool,
    ) -> Result<crate::https_client::FullResponse, Failure> {
        let (host, port, path) = crate::config::url::parse_url(url)
            .ok_or_else(|| fail(FailureKind::Transient, format!("{step}: bad URL {url:?}")))?;
        let addr = self.addr(step, &host, port).await?;
        let mut headers = vec![
            (
                "User-Agent",
                format!("chatrelay/{}", env!("CARGO_PKG_VERSION")),
            ),
            (
                "Accept",
                if pem {
                    "application/pem-certificate-chain"
                } else {
                    "application/json"
                }
                .to_string(),
            ),
        ];
        if body.is_some() {
            headers.push(("Content-Type", "application/jose+json".to_string()));
        }
        crate::https_client::exchange(
            self.client.clone(),
            addr,
            &host,
            method,
            &path,
            &headers,
            body.as_deref().unwrap_or("").as_bytes(),
            REQUEST_TIMEOUT,
            MAX_RESPONSE,
        )
        .await
        .map_err(|e| fail(FailureKind::Transient, format!("{step}: {e}")))
    }

    fn error(&self, step: &str, status: u16, body: &[u8]) -> Failure {
        let (ty, detail) = problem_text(body);
        let text = format!("{step}: status: {status} {ty}: {detail}");
        fail(classify(&text), text)
    }

    /// A nonce for the next request: the last response's, else `newNonce`
    /// (§7.2, HEAD).
    async fn fresh_nonce(&mut self) -> Result<String, Failure> {
        if let Some(n) = self.nonce.take() {
            return Ok(n);
        }
        let url = self.new_nonce.clone();
        let r = self.http("nonce", "HEAD", &url, None, false).await?;
        r.header("replay-nonce")
            .map(str::to_string)
            .ok_or_else(|| fail(FailureKind::Transient, "nonce: no Replay-Nonce"))
    }

    /// A signed POST (`payload` JSON) or POST-as-GET (`None`); `pem`: the
    /// certificate download (§7.4.2).
    pub async fn post(
        &mut self,
        step: &str,
        url: &str,
        payload: Option<&str>,
        pem: bool,
    ) -> Result<Reply, Failure> {
        for n in 1..=NONCE_TRIES {
            let nonce = self.fresh_nonce().await?;
            let body = self
                .key
                .sign(url, &nonce, self.kid.as_deref(), payload)
                .map_err(|e| fail(FailureKind::Transient, format!("{step}: {e}")))?;
            let r = self.http(step, "POST", url, Some(body), pem).await?;
            self.nonce = r.header("replay-nonce").map(str::to_string);
            if r.status >= 400 {
                let (ty, _) = problem_text(&r.body);
                if ty == "urn:ietf:params:acme:error:badNonce" && n < NONCE_TRIES {
                    log::info!("ACME: {step}: badNonce, sending again with a fresh nonce");
                    continue;
                }
                return Err(self.error(step, r.status, &r.body));
            }
            let json = if pem {
                Value::Null
            } else {
                serde_json::from_slice(&r.body).map_err(|e| {
                    fail(
                        FailureKind::Transient,
                        format!("{step}: answer is not JSON: {e}"),
                    )
                })?
            };
            return Ok(Reply {
                location: r.header("location").map(str::to_string),
                json,
                body: r.body,
            });
        }
        unreachable!("the last try returns")
    }

    /// §7.3: create the account, or find the one of this key (the CA
    /// answers 200 with its URL).
    pub async fn account(&mut self, contact: &[String]) -> Result<(), Failure> {
        let payload = serde_json::json!({
            "termsOfServiceAgreed": true,
            "contact": contact,
        })
        .to_string();
        let url = self.new_account.clone();
        let r = self.post("account", &url, Some(&payload), false).await?;
        match r.location {
            Some(kid) => {
                self.kid = Some(kid);
                Ok(())
            }
            None => Err(fail(FailureKind::Transient, "account: no Location")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_documents() {
        let (t, d) = problem_text(
            br#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many"}"#,
        );
        assert_eq!(t, "urn:ietf:params:acme:error:rateLimited");
        assert_eq!(d, "too many");
        let (t, d) = problem_text(b"<html>oops</html>");
        assert_eq!(t, "");
        assert_eq!(d, "<html>oops</html>");
    }
}
