//! The workstation's shipped themes, by name: the very files of this folder, so that an
//! operator's copy starts from what the binary shows.

/// The themes shipped in the binary, by name; the first is the default.
pub const SHIPPED: [(&str, &str); 4] = [
    ("default-dark", include_str!("default-dark.toml")),
    ("light", include_str!("light.toml")),
    ("high-contrast", include_str!("high-contrast.toml")),
    ("colorblind", include_str!("colorblind.toml")),
];
