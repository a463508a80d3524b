//! Where a webhook may point (SSRF protection): http(s) URLs whose host
//! resolves only to public addresses, unless
//! `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`. Checked when a webhook is saved and
//! again at every delivery: [`GuardedResolver`] is the HTTP client's DNS
//! resolver, so the address connected to is the one that was checked (a DNS
//! answer that changes between check and connect cannot slip through).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a target is refused, phrased for the admin who entered it.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("must be an absolute http:// or https:// URL")]
    NotHttp,
    #[error("host {0} does not resolve")]
    Unresolvable(String),
    #[error("host resolves to {0}, a private, loopback or link-local address; set WEBHOOK_ALLOW_PRIVATE_TARGETS=true to allow it")]
    Private(IpAddr),
}

/// True for addresses a webhook must not reach from the server's network.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => private_v4(v4),
            None => private_v6(v6),
        },
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10 carrier-grade NAT, 198.18.0.0/15 benchmarking, 240/4 reserved.
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local, 2001:db8::/32 documentation.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
}

/// Parses a target URL: http or https with a host.
pub fn parse(url: &str) -> Result<reqwest::Url, TargetError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| TargetError::NotHttp)?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(TargetError::NotHttp);
    }
    Ok(parsed)
}

/// Resolves `host` and refuses it if any address is private (unless allowed).
async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, TargetError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| TargetError::Unresolvable(host.to_owned()))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable(host.to_owned()));
    }
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| is_private(a.ip())) {
            return Err(TargetError::Private(bad.ip()));
        }
    }
    Ok(addrs)
}

/// The whole check of a target URL (on save and before each delivery).
pub async fn check(url: &str, allow_private: bool) -> Result<reqwest::Url, TargetError> {
    let parsed = parse(url)?;
    let host = parsed.host_str().unwrap_or_default();
    let port = parsed.port_or_known_default().unwrap_or(443);
    resolve(host, port, allow_private).await?;
    Ok(parsed)
}

/// The delivery client's DNS resolver: the same rule, applied to the
/// addresses the connection will actually use.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolve(name.as_str(), 0, allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn only_http_urls_to_public_hosts_pass() {
        assert!(matches!(
            check("ftp://example.com/x", false).await,
            Err(TargetError::NotHttp)
        ));
        assert!(matches!(
            check("not a url", false).await,
            Err(TargetError::NotHttp)
        ));
        assert!(matches!(
            check("http://127.0.0.1:9/hook", false).await,
            Err(TargetError::Private(_))
        ));
        assert!(matches!(
            check("http://[::1]:9/hook", false).await,
            Err(TargetError::Private(_))
        ));
        assert!(check("http://127.0.0.1:9/hook", true).await.is_ok());
        assert!(matches!(
            check("http://localhost:9/hook", false).await,
            Err(TargetError::Private(_))
        ));
    }
}
