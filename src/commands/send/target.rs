//! Where a delivery goes: the callback URL, parsed, and the ports POPBiLL
//! delivers to.

use hyper::Uri;

/// The ports POPBiLL delivers to.
pub(crate) const POPBILL_PORTS: &[u16] = &[80, 443, 9854];

/// A parsed callback URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) https: bool,
    /// Without brackets for IPv6 literals.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The `Host` header: the URL's authority.
    pub(crate) authority: String,
    pub(crate) path_and_query: String,
    pub(crate) url: String,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => return Err(format!("{url}: scheme {other} (use http:// or https://)")),
            None => {
                return Err(format!(
                    "{url}: give the whole URL, e.g. https://hooks.example.com/popbill/webhook"
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{url}: no host"))?
            .clone();
        if authority.as_str().contains('@') {
            return Err(format!(
                "{url}: credentials in the URL are not sent by POPBiLL; use --basic user:pass"
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        Ok(Target {
            https,
            host,
            port,
            authority: authority.as_str().to_string(),
            path_and_query,
            url: url.to_string(),
        })
    }

    /// Whether POPBiLL would deliver to this port at all.
    pub(crate) fn popbill_port(&self) -> bool {
        POPBILL_PORTS.contains(&self.port)
    }
}

#[cfg(test)]
mod tests;
