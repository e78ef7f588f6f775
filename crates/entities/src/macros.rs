//! The two macros behind every closed vocabulary of the crate: `wire_enum!` (a fixed wire name per
//! member) and `coded_enum!` (a wire name plus a stable integer code).

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// Deserializes a string and parses it with `T::from_str`, reporting the parse error through serde.
pub(crate) fn deserialize_from_str<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct ParseVisitor<T>(PhantomData<T>);

    impl<T> Visitor<'_> for ParseVisitor<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }
    }

    deserializer.deserialize_str(ParseVisitor(PhantomData))
}

/// Declares a fieldless enum whose members each have one wire name.
///
/// Generates: `ALL` and `NAMES` (declaration order), `as_str()`, `Display` (the wire name),
/// `FromStr` (the wire name, exact first, then ASCII case-insensitively; unknown names give
/// [`crate::ParseEnumError::UnknownName`]) and serde as the wire name.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident $(= $code:literal)? => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* #[doc = concat!("\n\nWire name: `", $wire, "`.")] $variant $(= $code)?, )+
        }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// Every wire name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($wire),+];

            /// The wire name (what `Display`, `FromStr` and serde use).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .find(|v| v.as_str() == s)
                    .or_else(|| Self::ALL.iter().find(|v| v.as_str().eq_ignore_ascii_case(s)))
                    .copied()
                    .ok_or_else(|| $crate::ParseEnumError::UnknownName {
                        kind: $kind,
                        name: s.to_owned(),
                        expected: Self::NAMES,
                    })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::macros::deserialize_from_str(deserializer)
            }
        }
    };
}

/// Declares a [`wire_enum!`] whose members also carry a stable `i32` code (OTX's `IntEnum`
/// values). Adds `code()`, `from_code()`, `TryFrom<i32>` (unknown codes give
/// [`crate::ParseEnumError::UnknownCode`]) and `From<Self> for i32`.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $wire:literal, )+
        }
    ) => {
        $crate::macros::wire_enum! {
            $(#[$meta])*
            #[repr(i32)]
            $vis enum $name ($kind) {
                $( $(#[$vmeta])* $variant = $code => $wire, )+
            }
        }

        impl $name {
            /// The stable integer code (numbered from 1 in declaration order, as in OTX).
            pub const fn code(self) -> i32 {
                self as i32
            }

            /// The member with this integer code, if any.
            pub const fn from_code(code: i32) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl TryFrom<i32> for $name {
            type Error = $crate::ParseEnumError;

            fn try_from(code: i32) -> Result<Self, Self::Error> {
                Self::from_code(code).ok_or($crate::ParseEnumError::UnknownCode {
                    kind: $kind,
                    code,
                    expected: Self::ALL.len(),
                })
            }
        }

        impl From<$name> for i32 {
            fn from(value: $name) -> i32 {
                value.code()
            }
        }
    };
}

pub(crate) use {coded_enum, wire_enum};
