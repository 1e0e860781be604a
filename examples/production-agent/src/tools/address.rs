//! Which addresses the fetch tool may connect to: the public internet, and nothing of the machine, its
//! network or its cloud (loopback, private, link-local, unique-local, shared CGNAT space, the metadata
//! services) unless the configuration lists the address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an address is, as far as reaching it from a server goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressClass {
    /// Routable on the internet.
    Public,
    /// `0.0.0.0/8`, `::`: this host.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT and some clouds' internal services.
    SharedCgnat,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`.
    UniqueLocal,
    /// A cloud's instance metadata service: `169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`,
    /// `192.0.0.192`.
    Metadata,
    /// Multicast and broadcast.
    Multicast,
    /// Reserved, documentation, benchmarking and protocol-assignment ranges, never a real server.
    Reserved,
}

impl AddressClass {
    /// Whether the tool may connect without the address being listed.
    pub(crate) fn is_public(self) -> bool {
        self == AddressClass::Public
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "a public address",
            AddressClass::Unspecified => "an unspecified address (this host)",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private address",
            AddressClass::SharedCgnat => "a shared (CGNAT) address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::UniqueLocal => "a unique-local address",
            AddressClass::Metadata => "a cloud metadata address",
            AddressClass::Multicast => "a multicast or broadcast address",
            AddressClass::Reserved => "a reserved address",
        })
    }
}

/// The class of `address`; an IPv6 address that carries an IPv4 one (mapped, compatible, NAT64, 6to4) is
/// the class of the IPv4 address it reaches.
pub(crate) fn classify(address: IpAddr) -> AddressClass {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(address: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = address.octets();
    match (a, b, c) {
        _ if address == Ipv4Addr::new(169, 254, 169, 254)
            || address == Ipv4Addr::new(100, 100, 100, 200)
            || address == Ipv4Addr::new(192, 0, 0, 192) =>
        {
            AddressClass::Metadata
        }
        (0, ..) => AddressClass::Unspecified,
        (127, ..) => AddressClass::Loopback,
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::SharedCgnat,
        (169, 254, _) => AddressClass::LinkLocal,
        (224..=239, ..) | (255, 255, 255) => AddressClass::Multicast,
        (192, 0, 0 | 2) | (198, 18 | 19, _) | (198, 51, 100) | (203, 0, 113) | (240..=255, ..) => {
            AddressClass::Reserved
        }
        _ => AddressClass::Public,
    }
}

fn classify_v6(address: Ipv6Addr) -> AddressClass {
    if let Some(v4) = embedded_v4(address) {
        return classify_v4(v4);
    }
    let segments = address.segments();
    match segments {
        _ if address == Ipv6Addr::UNSPECIFIED => AddressClass::Unspecified,
        _ if address == Ipv6Addr::LOCALHOST => AddressClass::Loopback,
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] => AddressClass::Metadata,
        [first, ..] if first & 0xfe00 == 0xfc00 => AddressClass::UniqueLocal,
        [first, ..] if first & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        // Site-local, deprecated but still routed inside some networks.
        [first, ..] if first & 0xffc0 == 0xfec0 => AddressClass::Private,
        [first, ..] if first & 0xff00 == 0xff00 => AddressClass::Multicast,
        // Documentation, discard-only, and the IPv4-compatible range not caught above.
        [0x2001, 0x0db8, ..] | [0x0100, 0, 0, 0, ..] | [0, ..] => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

/// The IPv4 address an IPv6 one reaches: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`).
fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = address.segments();
    let low = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match segments {
        [0, 0, 0, 0, 0, 0xffff, high, low_half] | [0x0064, 0xff9b, 0, 0, 0, 0, high, low_half] => {
            Some(low(high, low_half))
        }
        // `::` and `::1` are IPv6's own; any other `::a.b.c.d` is the IPv4 address.
        [0, 0, 0, 0, 0, 0, high, low_half] if high != 0 => Some(low(high, low_half)),
        [0x2002, high, low_half, ..] => Some(low(high, low_half)),
        _ => None,
    }
}

/// `address` as it is compared with a listed one: an IPv4-mapped IPv6 address as its IPv4 address.
pub(crate) fn canonical(address: IpAddr) -> IpAddr {
    address.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> AddressClass {
        classify(text.parse().expect("an address"))
    }

    #[test]
    fn ipv4_addresses_of_the_machine_its_network_and_its_cloud_are_not_public() {
        for (address, expected) in [
            ("0.0.0.0", AddressClass::Unspecified),
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.0.9", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::SharedCgnat),
            ("100.127.255.254", AddressClass::SharedCgnat),
            ("169.254.1.1", AddressClass::LinkLocal),
            ("169.254.169.254", AddressClass::Metadata),
            ("100.100.100.200", AddressClass::Metadata),
            ("192.0.0.192", AddressClass::Metadata),
            ("224.0.0.1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Multicast),
            ("192.0.2.10", AddressClass::Reserved),
            ("198.18.0.1", AddressClass::Reserved),
            ("240.0.0.1", AddressClass::Reserved),
        ] {
            assert_eq!(class(address), expected, "{address}");
            assert!(!class(address).is_public());
        }
    }

    #[test]
    fn public_ipv4_addresses_and_the_edges_of_private_ranges_are_public() {
        for address in ["93.184.215.14", "1.1.1.1", "172.15.255.255", "172.32.0.0", "100.63.255.255", "100.128.0.0"] {
            assert_eq!(class(address), AddressClass::Public, "{address}");
        }
    }

    #[test]
    fn ipv6_addresses_are_classified_by_their_ranges() {
        for (address, expected) in [
            ("::", AddressClass::Unspecified),
            ("::1", AddressClass::Loopback),
            ("fe80::1", AddressClass::LinkLocal),
            ("fc00::1", AddressClass::UniqueLocal),
            ("fd12:3456::1", AddressClass::UniqueLocal),
            ("fd00:ec2::254", AddressClass::Metadata),
            ("fec0::1", AddressClass::Private),
            ("ff02::1", AddressClass::Multicast),
            ("2001:db8::1", AddressClass::Reserved),
            ("100::1", AddressClass::Reserved),
            ("2606:4700:4700::1111", AddressClass::Public),
        ] {
            assert_eq!(class(address), expected, "{address}");
        }
    }

    #[test]
    fn ipv6_addresses_carrying_an_ipv4_one_are_the_ipv4_ones_class() {
        for (address, expected) in [
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::Metadata),
            ("::ffff:10.0.0.1", AddressClass::Private),
            ("::ffff:93.184.215.14", AddressClass::Public),
            ("::127.0.0.1", AddressClass::Loopback),
            ("64:ff9b::192.168.0.1", AddressClass::Private),
            ("2002:7f00:1::", AddressClass::Loopback),
            ("2002:a9fe:a9fe::1", AddressClass::Metadata),
        ] {
            assert_eq!(class(address), expected, "{address}");
        }
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("an address");
        assert_eq!(canonical(mapped), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
