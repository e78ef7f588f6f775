//! kiln-assets
