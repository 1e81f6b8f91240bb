//! Where a delivery may come from: an allow-list of source networks.
//!
//! POPBiLL sends from two fixed addresses (the `popbill` preset). Behind an
//! ingress the TCP peer is the proxy, so the client address is taken from
//! the one header the proxy writes (`access.client_ip_header`:
//! `X-Forwarded-For` by default, or `Forwarded`, `X-Real-IP`, ...) — but
//! **only** when the peer itself is a configured trusted proxy; from anyone
//! else it is ignored, since any client can write it. Only that header is
//! read, never another one in its absence: a proxy that writes
//! `X-Forwarded-For` passes a client's `Forwarded` through untouched. In
//! the forwarded chain, the client is the right-most address that is not a
//! trusted proxy: addresses further left were written by the client and
//! prove nothing.
//!
//! When the TCP peer is not a trusted proxy, its address is the client's,
//! so the verdict is known at accept ([`Access::verdict_at_accept`]): a
//! stranger is closed before it can hold a connection slot.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

use hyper::HeaderMap;
use hyper::header::{FORWARDED, HeaderName};
use ipnet::IpNet;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Source networks allowed to deliver (CIDR or address; `"popbill"` is
    /// POPBiLL's two documented addresses). Empty: any source.
    #[serde(deserialize_with = "crate::deserialize::string_or_list")]
    pub allow: Vec<String>,
    /// Proxies (ingress controllers, load balancers) whose
    /// `client_ip_header` is believed.
    #[serde(deserialize_with = "crate::deserialize::string_or_list")]
    pub trusted_proxies: Vec<String>,
    /// The one header the trusted proxies write the client's address in:
    /// `x-forwarded-for` (ingress-nginx, AWS ALB, Envoy), `forwarded`
    /// (RFC 7239), or another list-of-addresses header such as
    /// `x-real-ip`. Named, never guessed: a proxy that writes one header
    /// passes the others through as the client sent them.
    pub client_ip_header: String,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            trusted_proxies: Vec::new(),
            client_ip_header: "x-forwarded-for".into(),
        }
    }
}

/// POPBiLL's documented source addresses (`send` names them too).
pub(crate) const POPBILL_SOURCES: &[&str] = &["54.180.62.221", "13.124.72.158"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCheck {
    /// No allow-list: every source may deliver.
    NotConfigured,
    Allowed,
    Denied,
}

#[derive(Debug, Clone)]
pub struct Access {
    allow: Vec<IpNet>,
    trusted_proxies: Vec<IpNet>,
    /// Where trusted proxies write the client's address.
    header: ClientIpHeader,
}

/// The header a trusted proxy's client address is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientIpHeader {
    /// RFC 7239 `Forwarded: for=...`.
    Forwarded,
    /// A comma-separated list of addresses, client first
    /// (`X-Forwarded-For`; `X-Real-IP` is a list of one).
    Addresses(HeaderName),
}

impl ClientIpHeader {
    fn parse(name: &str) -> Result<ClientIpHeader, String> {
        let name = name.trim().to_ascii_lowercase();
        if name == FORWARDED.as_str() {
            return Ok(ClientIpHeader::Forwarded);
        }
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) if !name.is_empty() => Ok(ClientIpHeader::Addresses(h)),
            _ => Err(format!(
                "access.client_ip_header {name:?} is not a header name: use \"x-forwarded-for\", \"forwarded\" or e.g. \"x-real-ip\""
            )),
        }
    }
}

/// Parses `a.b.c.d/n`, a bare address, or the preset name `popbill`.
fn parse_networks(entries: &[String]) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for e in entries {
        let e = e.trim();
        if e.eq_ignore_ascii_case("popbill") {
            for p in POPBILL_SOURCES {
                let ip: IpAddr = p.parse().map_err(|err| format!("{p}: {err}"))?;
                out.push(IpNet::from(ip));
            }
        } else if let Ok(net) = e.parse::<IpNet>() {
            out.push(net);
        } else if let Ok(ip) = e.parse::<IpAddr>() {
            out.push(IpNet::from(ip));
        } else {
            return Err(format!(
                "{e:?} is not an address or CIDR network (e.g. \"203.0.113.7\", \"10.0.0.0/8\", or \"popbill\")"
            ));
        }
    }
    Ok(out)
}

impl Access {
    /// Checks the section and builds the allow-list; every problem at once.
    pub fn new(cfg: &AccessConfig) -> Result<Access, Vec<String>> {
        let allow = parse_networks(&cfg.allow).map_err(|e| format!("access.allow: {e}"));
        let proxies = parse_networks(&cfg.trusted_proxies)
            .map_err(|e| format!("access.trusted_proxies: {e}"));
        let header = ClientIpHeader::parse(&cfg.client_ip_header);
        match (allow, proxies, header) {
            (Ok(allow), Ok(trusted_proxies), Ok(header)) => Ok(Access {
                allow,
                trusted_proxies,
                header,
            }),
            (a, p, h) => Err([a.err(), p.err(), h.err()].into_iter().flatten().collect()),
        }
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }

    /// The address the delivery really came from.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer.ip());
        if !self.trusted(peer) {
            return peer;
        }
        // Hops in order from the client towards us; walk from the nearest.
        let hops = forwarded_chain(headers, &self.header);
        for hop in hops.iter().rev() {
            if !self.trusted(*hop) {
                return *hop;
            }
        }
        // Every hop is a proxy of ours (or there were none): the left-most
        // is the best we know.
        hops.first().copied().unwrap_or(peer)
    }

    /// The verdict on a connection from `peer` when it can be given before
    /// any header is read: always, unless the peer is a trusted proxy
    /// (whose client is only known from the request). `None`: decide per
    /// request.
    pub(crate) fn verdict_at_accept(&self, peer: SocketAddr) -> Option<SourceCheck> {
        if self.trusted(peer.ip()) {
            None
        } else {
            Some(self.check(peer.ip()))
        }
    }

    pub fn check(&self, client: IpAddr) -> SourceCheck {
        if self.allow.is_empty() {
            return SourceCheck::NotConfigured;
        }
        let ip = canonical(client);
        if self.allow.iter().any(|n| n.contains(&ip)) {
            SourceCheck::Allowed
        } else {
            SourceCheck::Denied
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, as a dual-stack listener reports
/// IPv4 peers) compares as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Addresses from the configured header only, across repeated headers,
/// client first. Unparsable entries (obfuscated identifiers, `unknown`) end
/// the chain there: nothing left of them can be trusted either.
fn forwarded_chain(headers: &HeaderMap, header: &ClientIpHeader) -> Vec<IpAddr> {
    let name = match header {
        ClientIpHeader::Forwarded => &FORWARDED,
        ClientIpHeader::Addresses(name) => name,
    };
    // Borrowed from the request: nothing is copied to find one address.
    let entries = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    let mut out = Vec::new();
    for entry in entries {
        let hop = match header {
            ClientIpHeader::Forwarded => match forwarded_for(entry) {
                Some(hop) => hop,
                // An element without `for=` names no hop.
                None => continue,
            },
            ClientIpHeader::Addresses(_) => entry,
        };
        match parse_hop(hop) {
            Some(ip) => out.push(ip),
            None => out.clear(),
        }
    }
    out
}

/// The `for=` value of one `Forwarded` element, unquoted.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("for")
            .then(|| v.trim().trim_matches('"'))
    })
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]`, `[2001:db8::1]:80`, `2001:db8::1`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    let inner = s.strip_prefix('[')?.split(']').next()?;
    inner.parse().ok()
}

#[cfg(test)]
mod tests;
