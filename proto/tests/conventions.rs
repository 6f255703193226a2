//! The contract follows the conventions integrators expect (AIP-142 for times and
//! durations, no field a client language cannot name), checked over the compiled
//! descriptor so a new field that breaks them fails here.

use prost::Message;
use prost_types::field_descriptor_proto::Type;

/// Words that are keywords in a language clients are written in (Python, JavaScript,
/// Go, Java, C#, Swift, Kotlin, Rust): a field named one needs escaping there.
const KEYWORDS: &[&str] = &[
    "and", "as", "assert", "async", "await", "break", "case", "catch", "class", "const", "continue", "def", "default", "del", "do", "elif", "else",
    "enum", "except", "export", "extends", "false", "final", "finally", "fn", "for", "from", "func", "function", "global", "go", "if", "impl",
    "import", "in", "interface", "is", "lambda", "let", "loop", "match", "mod", "new", "nonlocal", "none", "not", "null", "or", "package", "pass",
    "private", "protected", "public", "raise", "return", "self", "static", "struct", "super", "switch", "this", "throw", "true", "try", "type",
    "typeof", "var", "void", "when", "where", "while", "with", "yield",
];

/// Every field of every message: (message, field name, type name if a message).
fn fields() -> Vec<(String, String, Option<String>, Type)> {
    let set = prost_types::FileDescriptorSet::decode(dispense_proto::v1::FILE_DESCRIPTOR_SET).expect("descriptor");
    let mut out = Vec::new();
    for file in &set.file {
        for message in &file.message_type {
            for field in &message.field {
                out.push((message.name().to_owned(), field.name().to_owned(), field.type_name.clone(), field.r#type()));
            }
        }
    }
    out
}

#[test]
fn times_and_durations_are_named_and_typed_as_aip_142_says() {
    let mut wrong = Vec::new();
    for (message, name, type_name, kind) in fields() {
        let type_name = type_name.unwrap_or_default();
        if type_name == ".google.protobuf.Timestamp" && !name.ends_with("_time") {
            wrong.push(format!("{message}.{name}: a Timestamp's name ends in _time"));
        }
        if type_name == ".google.protobuf.Duration" && ["_s", "_ms", "_seconds", "_millis", "_minutes"].iter().any(|u| name.ends_with(u)) {
            wrong.push(format!("{message}.{name}: a Duration carries its unit; its name does not"));
        }
        let number = !matches!(kind, Type::Message | Type::String | Type::Bytes | Type::Enum | Type::Bool);
        if number && ["_s", "_ms", "_secs", "_seconds", "_millis"].iter().any(|u| name.ends_with(u)) {
            wrong.push(format!("{message}.{name}: a span of time is a google.protobuf.Duration"));
        }
        if name.ends_with("_at") || name == "at" || name == "since" {
            wrong.push(format!("{message}.{name}: a point in time is a Timestamp named *_time"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_field_is_named_a_keyword_of_a_client_language() {
    let named: Vec<String> = fields().into_iter().filter(|(_, name, ..)| KEYWORDS.contains(&name.as_str())).map(|(m, n, ..)| format!("{m}.{n}")).collect();
    assert!(named.is_empty(), "fields named keywords: {named:?}");
}
