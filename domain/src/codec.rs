//! How events are stored and read back: one decode path for every reader (the event store,
//! projectors, the dispatcher, workers and audit replay).
//!
//! An event's type name is its serde variant name, read from the enum itself by
//! [`variant_name`]/[`variant_names`], so every name is written once: in the enum. Its version
//! is explicit ([`cqrs_es::DomainEvent::event_version`]) and changes only together with an
//! upcaster that turns the stored older shape into the current one.

use std::sync::{LazyLock, Mutex};

use cqrs_es::DomainEvent;
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// An aggregate's event as it is stored: named by its serde variant, versioned, upcast on read.
pub trait EventSchema: DomainEvent + Serialize + DeserializeOwned + 'static {
    /// The `aggregate_type` of the aggregate these events belong to.
    const AGGREGATE: &'static str;

    /// Upcasters from stored older versions to the current ones (none by default).
    fn upcasters() -> &'static [Box<dyn EventUpcaster>] {
        &[]
    }

    /// Which string fields of each event type hold customer data ([`crate::pii`]); an aggregate
    /// whose events hold none declares every string field safe.
    fn fields() -> &'static [crate::pii::Fields] {
        &[]
    }

    /// The customer-data paths of `event_type`.
    fn pii_paths(event_type: &str) -> &'static [&'static str] {
        crate::pii::pii_paths(Self::fields(), event_type)
    }

    /// The event's type name: its serde variant name.
    fn name(&self) -> &'static str {
        variant_name(self)
    }

    /// Every event type name, in declaration order.
    fn types() -> &'static [&'static str] {
        variant_names::<Self>()
    }

    /// Reads a stored event of any known version (older versions are upcast first).
    fn decode(event_type: &str, version: &str, payload: &str) -> Result<Self, DecodeError> {
        decode_with(Self::AGGREGATE, event_type, version, payload, Self::upcasters())
    }
}

/// Implements cqrs-es's `Aggregate` for a pure decider: a state type with
/// `decide(&self, Command) -> Result<Vec<Event>, Error>` and `evolve(&mut self, Event)`. Every
/// aggregate of the domain is such a decider, so this is written once.
#[macro_export]
macro_rules! impl_aggregate {
    ($state:ty, $name:literal, $command:ty, $event:ty, $error:ty) => {
        impl cqrs_es::Aggregate for $state {
            const TYPE: &'static str = $name;
            type Command = $command;
            type Event = $event;
            type Error = $error;
            type Services = ();

            async fn handle(
                &mut self,
                command: Self::Command,
                _services: &Self::Services,
                sink: &cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), Self::Error> {
                for event in self.decide(command)? {
                    sink.write(event, self).await;
                }
                Ok(())
            }

            fn apply(&mut self, event: Self::Event) {
                self.evolve(event);
            }
        }
    };
}

/// Why a stored event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{aggregate} event {event_type} v{version}: {source}")]
    Invalid { aggregate: &'static str, event_type: String, version: String, source: serde_json::Error },
}

/// Decodes `payload` of `event_type` at `version` into `E`, upcasting it first when an upcaster
/// knows that version.
pub fn decode_with<E: DeserializeOwned>(
    aggregate: &'static str,
    event_type: &str,
    version: &str,
    payload: &str,
    upcasters: &[Box<dyn EventUpcaster>],
) -> Result<E, DecodeError> {
    let invalid = |source| DecodeError::Invalid {
        aggregate,
        event_type: event_type.to_string(),
        version: version.to_string(),
        source,
    };
    if !upcasters.iter().any(|u| u.can_upcast(event_type, version)) {
        return serde_json::from_str(payload).map_err(invalid);
    }
    let mut event = SerializedEvent::new(
        String::new(),
        0,
        aggregate.to_string(),
        event_type.to_string(),
        version.to_string(),
        serde_json::from_str(payload).map_err(invalid)?,
        serde_json::Value::Null,
    );
    for u in upcasters {
        if u.can_upcast(&event.event_type, &event.event_version) {
            event = u.upcast(event);
        }
    }
    serde_json::from_value(event.payload).map_err(invalid)
}

/// The serde variant name of an enum value (`""` for anything that is not an enum variant).
/// Only the name is read: the variant's fields are not serialized.
pub fn variant_name<T: Serialize + ?Sized>(value: &T) -> &'static str {
    value.serialize(names::VariantName).unwrap_or("")
}

/// The variant names of an enum, in declaration order, as its `Deserialize` declares them
/// (computed once per type).
pub fn variant_names<T: for<'de> Deserialize<'de> + 'static>() -> &'static [&'static str] {
    type Known = Vec<(std::any::TypeId, &'static [&'static str])>;
    static KNOWN: LazyLock<Mutex<Known>> = LazyLock::new(Mutex::default);
    let id = std::any::TypeId::of::<T>();
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, names)) = known.iter().find(|(t, _)| *t == id) {
        return names;
    }
    let mut found: &'static [&'static str] = &[];
    let _ = T::deserialize(names::Variants(&mut found));
    known.push((id, found));
    found
}

mod names {
    //! A serializer that only reads an enum value's variant name, and a deserializer that only
    //! reads an enum's variant list.

    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::ser::{self, Impossible, Serialize};

    #[derive(Debug)]
    pub struct NotAVariant;

    impl fmt::Display for NotAVariant {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("not an enum variant")
        }
    }

    impl std::error::Error for NotAVariant {}

    impl ser::Error for NotAVariant {
        fn custom<T: fmt::Display>(_: T) -> Self {
            NotAVariant
        }
    }

    impl de::Error for NotAVariant {
        fn custom<T: fmt::Display>(_: T) -> Self {
            NotAVariant
        }
    }

    pub struct VariantName;

    /// The fields of a struct or tuple variant, skipped.
    pub struct Skip(&'static str);

    impl ser::SerializeStructVariant for Skip {
        type Ok = &'static str;
        type Error = NotAVariant;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, _: &T) -> Result<(), NotAVariant> {
            Ok(())
        }
        fn end(self) -> Result<&'static str, NotAVariant> {
            Ok(self.0)
        }
    }

    impl ser::SerializeTupleVariant for Skip {
        type Ok = &'static str;
        type Error = NotAVariant;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), NotAVariant> {
            Ok(())
        }
        fn end(self) -> Result<&'static str, NotAVariant> {
            Ok(self.0)
        }
    }

    macro_rules! not_a_variant {
        ($($f:ident($($t:ty),*)),* $(,)?) => {
            $(fn $f(self, $(_: $t),*) -> Result<&'static str, NotAVariant> { Err(NotAVariant) })*
        };
    }

    impl ser::Serializer for VariantName {
        type Ok = &'static str;
        type Error = NotAVariant;
        type SerializeSeq = Impossible<&'static str, NotAVariant>;
        type SerializeTuple = Impossible<&'static str, NotAVariant>;
        type SerializeTupleStruct = Impossible<&'static str, NotAVariant>;
        type SerializeTupleVariant = Skip;
        type SerializeMap = Impossible<&'static str, NotAVariant>;
        type SerializeStruct = Impossible<&'static str, NotAVariant>;
        type SerializeStructVariant = Skip;

        not_a_variant!(
            serialize_bool(bool),
            serialize_i8(i8),
            serialize_i16(i16),
            serialize_i32(i32),
            serialize_i64(i64),
            serialize_u8(u8),
            serialize_u16(u16),
            serialize_u32(u32),
            serialize_u64(u64),
            serialize_f32(f32),
            serialize_f64(f64),
            serialize_char(char),
            serialize_str(&str),
            serialize_bytes(&[u8]),
            serialize_none(),
            serialize_unit(),
            serialize_unit_struct(&'static str),
        );

        fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<&'static str, NotAVariant> {
            Err(NotAVariant)
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<&'static str, NotAVariant> {
            Ok(variant)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            value: &T,
        ) -> Result<&'static str, NotAVariant> {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            _: &T,
        ) -> Result<&'static str, NotAVariant> {
            Ok(variant)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAVariant> {
            Err(NotAVariant)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAVariant> {
            Err(NotAVariant)
        }
        fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, NotAVariant> {
            Err(NotAVariant)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            _: usize,
        ) -> Result<Skip, NotAVariant> {
            Ok(Skip(variant))
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAVariant> {
            Err(NotAVariant)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotAVariant> {
            Err(NotAVariant)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            _: usize,
        ) -> Result<Skip, NotAVariant> {
            Ok(Skip(variant))
        }
    }

    /// Reads the `variants` an enum's `Deserialize` passes to `deserialize_enum`, then stops.
    pub struct Variants<'a>(pub &'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Variants<'_> {
        type Error = NotAVariant;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, NotAVariant> {
            Err(NotAVariant)
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _: &'static str,
            variants: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, NotAVariant> {
            *self.0 = variants;
            Err(NotAVariant)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map struct identifier ignored_any
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    enum Sample {
        Unit,
        Struct {
            a: u32,
            b: String,
        },
        Tuple(u32, u32),
        Newtype(String),
        #[serde(rename = "Renamed")]
        Other {
            x: bool,
        },
    }

    #[test]
    fn names_come_from_serde() {
        assert_eq!(variant_name(&Sample::Unit), "Unit");
        assert_eq!(variant_name(&Sample::Struct { a: 1, b: "x".into() }), "Struct");
        assert_eq!(variant_name(&Sample::Tuple(1, 2)), "Tuple");
        assert_eq!(variant_name(&Sample::Newtype("x".into())), "Newtype");
        assert_eq!(variant_name(&Sample::Other { x: true }), "Renamed");
        assert_eq!(variant_name(&5u32), "");
        assert_eq!(variant_names::<Sample>(), ["Unit", "Struct", "Tuple", "Newtype", "Renamed"]);
        // The second call is answered from the cache, with the same list.
        assert_eq!(variant_names::<Sample>().len(), 5);
    }

    #[test]
    fn every_name_serializes_as_the_payload_tag() {
        for s in [Sample::Unit, Sample::Struct { a: 1, b: "x".into() }, Sample::Other { x: false }] {
            let json = serde_json::to_value(&s).unwrap();
            let tag = match &json {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(m) => m.keys().next().unwrap().clone(),
                other => panic!("{other}"),
            };
            assert_eq!(tag, variant_name(&s));
        }
    }
}
