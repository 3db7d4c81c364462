//! A workload identity pool provider's attribute mapping and attribute condition, evaluated
//! locally for an AWS caller exactly as Google STS evaluates them: which `google.subject` and
//! `attribute.*` values the caller gets, whether the condition admits it, and which IAM
//! members (`principal://…`, `principalSet://…`) match it.

use std::collections::BTreeMap;

use super::cel::{self, Expr, Value};

/// Google's default attribute mapping for AWS providers (`providers create-aws` without
/// `--attribute-mapping`): `attribute.aws_role` is the assumed-role ARN without the session.
pub const GOOGLE_DEFAULT_AWS_MAPPING: &str = "google.subject=assertion.arn,attribute.aws_role=assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn";

/// A mapping whose `attribute.aws_role` is the role name only (as in the seed article), plus
/// `attribute.aws_account`.
pub const ROLE_NAME_MAPPING: &str = "google.subject=assertion.arn,attribute.aws_account=assertion.account,attribute.aws_role=assertion.arn.extract('assumed-role/{role}/')";

/// Longest `google.subject` Google accepts, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 127;

/// Most custom attributes (`attribute.NAME`) a provider may map.
pub const MAX_CUSTOM_ATTRIBUTES: usize = 50;

/// Longest attribute mapping expression Google accepts, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 2048;

/// Longest attribute condition Google accepts, in characters.
pub const MAX_CONDITION_CHARS: usize = 4096;

/// Most bytes all mapped attributes of one caller may total (keys and values; Google: 8 KB).
pub const MAX_MAPPED_BYTES: usize = 8 * 1024;

/// An attribute mapping or condition that does not parse, or fails for a caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{expression}: {message}")]
pub struct MappingError {
    /// Which expression: `attribute.aws_role` (a mapping entry), `attribute condition`, ….
    pub expression: String,
    /// What is wrong.
    pub message: String,
}

fn mapping_error(expression: impl Into<String>, message: impl Into<String>) -> MappingError {
    MappingError {
        expression: expression.into(),
        message: message.into(),
    }
}

/// What Google STS knows about an AWS caller (from `GetCallerIdentity`): the `assertion`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsAssertion {
    /// Caller ARN, e.g. `arn:aws:sts::123456789012:assumed-role/ROLE/SESSION`.
    pub arn: String,
    /// AWS account id.
    pub account: String,
    /// `UserId` of GetCallerIdentity, when known.
    pub userid: Option<String>,
}

impl AwsAssertion {
    /// The assertion for a caller ARN; the account is read from the ARN.
    pub fn from_arn(arn: impl Into<String>) -> Self {
        let arn = arn.into();
        let account = arn.split(':').nth(4).unwrap_or_default().to_string();
        AwsAssertion {
            arn,
            account,
            userid: None,
        }
    }

    fn value(&self) -> Value {
        let mut m = BTreeMap::from([
            ("arn".to_string(), Value::Str(self.arn.clone())),
            ("account".to_string(), Value::Str(self.account.clone())),
        ]);
        if let Some(u) = &self.userid {
            m.insert("userid".into(), Value::Str(u.clone()));
        }
        Value::Map(m)
    }
}

/// A parsed attribute mapping (`google.subject=…,attribute.NAME=…`).
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeMapping {
    entries: Vec<(String, String, Expr)>,
}

/// The attributes a mapping produced for one caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MappedAttributes {
    /// `google.subject`.
    pub subject: String,
    /// Every other mapped key with a non-empty value (`attribute.aws_role`, `google.groups`, …).
    pub attributes: BTreeMap<String, String>,
}

fn valid_key(key: &str) -> Result<(), String> {
    match key.split_once('.') {
        Some(("google", "subject" | "groups" | "display_name" | "posix_username")) => Ok(()),
        Some(("attribute", name))
            if !name.is_empty()
                && name.len() <= 100
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            Ok(())
        }
        Some(("attribute", _)) => Err(
            "custom attribute names must be 1-100 characters of a-z, 0-9 and _".to_string(),
        ),
        _ => Err(
            "expected google.subject, google.groups, google.display_name, google.posix_username or attribute.NAME"
                .to_string(),
        ),
    }
}

/// Splits `k=v,k=v` at the commas outside quotes, brackets and parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut quote, mut start) = (Vec::new(), 0i32, None, 0);
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

impl AttributeMapping {
    /// Parses the `--attribute-mapping` form (`google.subject=assertion.arn,attribute.x=…`)
    /// or a JSON object (`{"google.subject": "assertion.arn", …}`, as the provider resource
    /// holds it).
    pub fn parse(text: &str) -> Result<Self, MappingError> {
        let text = text.trim();
        if text.starts_with('{') {
            let map: BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| {
                mapping_error(
                    "attribute mapping",
                    format!("not a JSON object of strings: {e}"),
                )
            })?;
            return Self::from_pairs(map);
        }
        let mut pairs = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (key, expr) = part.split_once('=').ok_or_else(|| {
                mapping_error(
                    "attribute mapping",
                    format!("`{part}` is not KEY=EXPRESSION"),
                )
            })?;
            pairs.push((key.trim().to_string(), expr.trim().to_string()));
        }
        Self::from_pairs(pairs)
    }

    /// Builds a mapping from `(key, CEL expression)` pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, MappingError> {
        let mut entries: Vec<(String, String, Expr)> = Vec::new();
        for (key, src) in pairs {
            let (key, src) = (key.into(), src.into());
            valid_key(&key).map_err(|m| mapping_error(&key, m))?;
            if entries.iter().any(|(k, _, _)| *k == key) {
                return Err(mapping_error(&key, "is mapped twice"));
            }
            let chars = src.chars().count();
            if chars > MAX_EXPRESSION_CHARS {
                return Err(mapping_error(
                    &key,
                    format!("is {chars} characters, more than Google's {MAX_EXPRESSION_CHARS}"),
                ));
            }
            let expr = cel::parse(&src).map_err(|e| mapping_error(&key, e.message))?;
            entries.push((key, src, expr));
        }
        let custom = entries
            .iter()
            .filter(|(k, _, _)| k.starts_with("attribute."))
            .count();
        if custom > MAX_CUSTOM_ATTRIBUTES {
            return Err(mapping_error(
                "attribute mapping",
                format!(
                    "maps {custom} custom attributes, more than Google's {MAX_CUSTOM_ATTRIBUTES}"
                ),
            ));
        }
        if !entries.iter().any(|(k, _, _)| k == "google.subject") {
            return Err(mapping_error(
                "google.subject",
                "must be mapped (usually google.subject=assertion.arn)",
            ));
        }
        Ok(AttributeMapping { entries })
    }

    /// Google's default mapping for AWS providers.
    pub fn google_default_aws() -> Self {
        Self::parse(GOOGLE_DEFAULT_AWS_MAPPING).expect("the default mapping parses")
    }

    /// The role-name mapping ([`ROLE_NAME_MAPPING`]).
    pub fn role_name() -> Self {
        Self::parse(ROLE_NAME_MAPPING).expect("the role-name mapping parses")
    }

    /// The `--attribute-mapping` flag value, entries in their original order.
    pub fn to_flag(&self) -> String {
        self.entries
            .iter()
            .map(|(k, src, _)| format!("{k}={src}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `(key, CEL source)` pairs in their original order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(k, src, _)| (k.as_str(), src.as_str()))
    }

    /// The CEL source of one key, if mapped.
    pub fn expression(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, src, _)| src.as_str())
    }

    /// Computes the attributes of `assertion`, as Google STS does during the exchange.
    pub fn evaluate(&self, assertion: &AwsAssertion) -> Result<MappedAttributes, MappingError> {
        let vars = BTreeMap::from([("assertion".to_string(), assertion.value())]);
        let mut out = MappedAttributes::default();
        for (key, _, expr) in &self.entries {
            let value = cel::eval(expr, &vars).map_err(|e| mapping_error(key, e.message))?;
            let value = match value {
                Value::Str(s) => s,
                Value::List(items) if key == "google.groups" => items
                    .iter()
                    .map(|v| match v {
                        Value::Str(s) => Ok(s.as_str()),
                        other => Err(mapping_error(key, format!("group {other} is not a string"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
                other => {
                    return Err(mapping_error(
                        key,
                        format!("evaluates to {other}, not a string"),
                    ));
                }
            };
            if key == "google.subject" {
                if value.is_empty() {
                    return Err(mapping_error(key, "evaluates to an empty string"));
                }
                if value.len() > MAX_SUBJECT_BYTES {
                    return Err(mapping_error(
                        key,
                        format!(
                            "is {} bytes, more than Google's {MAX_SUBJECT_BYTES}: map a shorter value",
                            value.len()
                        ),
                    ));
                }
                out.subject = value;
            } else if !value.is_empty() {
                out.attributes.insert(key.clone(), value);
            }
        }
        let total = "google.subject".len()
            + out.subject.len()
            + out
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        if total > MAX_MAPPED_BYTES {
            return Err(mapping_error(
                "attribute mapping",
                format!("maps {total} bytes of attributes, more than Google's {MAX_MAPPED_BYTES}"),
            ));
        }
        Ok(out)
    }
}

impl MappedAttributes {
    fn vars(&self, assertion: &AwsAssertion) -> BTreeMap<String, Value> {
        let mut google =
            BTreeMap::from([("subject".to_string(), Value::Str(self.subject.clone()))]);
        let mut attribute = BTreeMap::new();
        for (k, v) in &self.attributes {
            match k.split_once('.') {
                Some(("google", "groups")) => {
                    let groups = v.split(',').map(|g| Value::Str(g.to_string())).collect();
                    google.insert("groups".into(), Value::List(groups));
                }
                Some(("google", name)) => {
                    google.insert(name.to_string(), Value::Str(v.clone()));
                }
                Some((_, name)) => {
                    attribute.insert(name.to_string(), Value::Str(v.clone()));
                }
                None => {}
            }
        }
        BTreeMap::from([
            ("assertion".to_string(), assertion.value()),
            ("google".to_string(), Value::Map(google)),
            ("attribute".to_string(), Value::Map(attribute)),
        ])
    }

    /// The `principal://` member of this caller in `pool`
    /// (`iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P`).
    pub fn principal(&self, pool: &str) -> String {
        format!("principal://{pool}/subject/{}", self.subject)
    }

    /// The `principalSet://…/attribute.NAME/VALUE` member for a mapped custom attribute.
    pub fn principal_set(&self, pool: &str, attribute: &str) -> Option<String> {
        let value = self.attributes.get(&format!("attribute.{attribute}"))?;
        Some(format!(
            "principalSet://{pool}/attribute.{attribute}/{value}"
        ))
    }
}

/// A parsed attribute condition.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeCondition {
    source: String,
    expr: Expr,
}

impl AttributeCondition {
    /// Parses a CEL condition such as `attribute.aws_role in ['…', '…']`.
    pub fn parse(text: &str) -> Result<Self, MappingError> {
        let chars = text.trim().chars().count();
        if chars > MAX_CONDITION_CHARS {
            return Err(mapping_error(
                "attribute condition",
                format!("is {chars} characters, more than Google's {MAX_CONDITION_CHARS}"),
            ));
        }
        let expr = cel::parse(text).map_err(|e| mapping_error("attribute condition", e.message))?;
        Ok(AttributeCondition {
            source: text.trim().to_string(),
            expr,
        })
    }

    /// The condition's CEL source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether Google admits the caller. An evaluation error is an `Err` (Google rejects it).
    pub fn admits(
        &self,
        assertion: &AwsAssertion,
        mapped: &MappedAttributes,
    ) -> Result<bool, MappingError> {
        match cel::eval(&self.expr, &mapped.vars(assertion)) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(mapping_error(
                "attribute condition",
                format!("evaluates to {other}, not a bool"),
            )),
            Err(e) => Err(mapping_error("attribute condition", e.message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = "iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/aws";
    const LAMBDA_ARN: &str =
        "arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsRole-AbC/crossfed-ListBuckets";

    /// Real mappings and conditions (Google's documentation, the seed article, gcloud users)
    /// with the attributes and decisions Google computes for them.
    #[test]
    fn table_of_real_mappings_and_conditions() {
        struct Case {
            mapping: &'static str,
            condition: &'static str,
            arn: &'static str,
            aws_role: Option<&'static str>,
            admitted: bool,
        }
        let cases = [
            Case {
                mapping: GOOGLE_DEFAULT_AWS_MAPPING,
                condition: "attribute.aws_role == 'arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsRole-AbC'",
                arn: LAMBDA_ARN,
                aws_role: Some(
                    "arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsRole-AbC",
                ),
                admitted: true,
            },
            Case {
                mapping: GOOGLE_DEFAULT_AWS_MAPPING,
                condition: "attribute.aws_role in ['arn:aws:sts::111122223333:assumed-role/a', 'arn:aws:sts::111122223333:assumed-role/b']",
                arn: "arn:aws:sts::111122223333:assumed-role/b/session",
                aws_role: Some("arn:aws:sts::111122223333:assumed-role/b"),
                admitted: true,
            },
            Case {
                mapping: GOOGLE_DEFAULT_AWS_MAPPING,
                condition: "attribute.aws_role in ['arn:aws:sts::111122223333:assumed-role/a']",
                arn: "arn:aws:sts::111122223333:assumed-role/b/session",
                aws_role: Some("arn:aws:sts::111122223333:assumed-role/b"),
                admitted: false,
            },
            Case {
                // An IAM user: the default mapping keeps the whole ARN.
                mapping: GOOGLE_DEFAULT_AWS_MAPPING,
                condition: "assertion.arn.startsWith('arn:aws:sts::111122223333:assumed-role/')",
                arn: "arn:aws:iam::111122223333:user/bob",
                aws_role: Some("arn:aws:iam::111122223333:user/bob"),
                admitted: false,
            },
            Case {
                // The seed article.
                mapping: "google.subject=assertion.arn,attribute.aws_account=assertion.account,attribute.aws_role=assertion.arn.extract('assumed-role/{role}/')",
                condition: "assertion.arn.startsWith('arn:aws:sts::111122223333:assumed-role/')",
                arn: LAMBDA_ARN,
                aws_role: Some("crossfed-ListBucketsRole-AbC"),
                admitted: true,
            },
            Case {
                mapping: ROLE_NAME_MAPPING,
                condition: "attribute.aws_account == '111122223333' && attribute.aws_role in ['crossfed-ListBucketsRole-AbC']",
                arn: LAMBDA_ARN,
                aws_role: Some("crossfed-ListBucketsRole-AbC"),
                admitted: true,
            },
            Case {
                mapping: ROLE_NAME_MAPPING,
                condition: "attribute.aws_account == '999999999999' || !(attribute.aws_role in ['x'])",
                arn: LAMBDA_ARN,
                aws_role: Some("crossfed-ListBucketsRole-AbC"),
                admitted: true,
            },
            Case {
                mapping: "google.subject=assertion.arn.contains('assumed-role') ? assertion.arn.extract('assumed-role/{r}') : assertion.arn",
                condition: "google.subject.startsWith('crossfed-')",
                arn: LAMBDA_ARN,
                aws_role: None,
                admitted: true,
            },
        ];
        for c in cases {
            let mapping = AttributeMapping::parse(c.mapping).unwrap();
            let assertion = AwsAssertion::from_arn(c.arn);
            let mapped = mapping.evaluate(&assertion).unwrap();
            assert_eq!(
                mapped
                    .attributes
                    .get("attribute.aws_role")
                    .map(String::as_str),
                c.aws_role,
                "{}",
                c.mapping
            );
            let condition = AttributeCondition::parse(c.condition).unwrap();
            assert_eq!(
                condition.admits(&assertion, &mapped),
                Ok(c.admitted),
                "{}",
                c.condition
            );
        }
    }

    #[test]
    fn principals_follow_the_mapping() {
        let a = AwsAssertion::from_arn(LAMBDA_ARN);
        assert_eq!(a.account, "111122223333");
        let default = AttributeMapping::google_default_aws().evaluate(&a).unwrap();
        assert_eq!(
            default.principal(POOL),
            format!("principal://{POOL}/subject/{LAMBDA_ARN}")
        );
        assert_eq!(
            default.principal_set(POOL, "aws_role").unwrap(),
            format!(
                "principalSet://{POOL}/attribute.aws_role/arn:aws:sts::111122223333:assumed-role/crossfed-ListBucketsRole-AbC"
            )
        );
        let seed = AttributeMapping::role_name().evaluate(&a).unwrap();
        assert_eq!(
            seed.principal_set(POOL, "aws_role").unwrap(),
            format!("principalSet://{POOL}/attribute.aws_role/crossfed-ListBucketsRole-AbC")
        );
        assert_eq!(
            seed.principal_set(POOL, "aws_account").unwrap(),
            format!("principalSet://{POOL}/attribute.aws_account/111122223333")
        );
        // Not an assumed role: the seed mapping yields no aws_role at all.
        let user = AttributeMapping::role_name()
            .evaluate(&AwsAssertion::from_arn("arn:aws:iam::1:user/bob"))
            .unwrap();
        assert_eq!(user.principal_set(POOL, "aws_role"), None);
    }

    #[test]
    fn mapping_forms_and_round_trip() {
        let m = AttributeMapping::role_name();
        assert_eq!(m.to_flag(), ROLE_NAME_MAPPING);
        assert_eq!(AttributeMapping::parse(&m.to_flag()).unwrap(), m);
        let json = r#"{"google.subject": "assertion.arn", "attribute.aws_role": "assertion.arn.extract('assumed-role/{role}/')"}"#;
        let j = AttributeMapping::parse(json).unwrap();
        assert_eq!(
            j.expression("attribute.aws_role"),
            Some("assertion.arn.extract('assumed-role/{role}/')")
        );
        // Commas inside lists and calls do not split entries.
        let m = AttributeMapping::parse(
            "google.subject=assertion.arn, attribute.ok=assertion.account in ['1', '2'] ? 'yes' : 'no'",
        )
        .unwrap();
        let mapped = m
            .evaluate(&AwsAssertion::from_arn("arn:aws:sts::2:assumed-role/r/s"))
            .unwrap();
        assert_eq!(mapped.attributes["attribute.ok"], "yes");
    }

    #[test]
    fn errors_name_the_entry() {
        let cases = [
            ("attribute.aws_role=assertion.arn", "google.subject"),
            (
                "google.subject=assertion.arn,attribute.AwsRole=assertion.arn",
                "attribute.AwsRole",
            ),
            (
                "google.subject=assertion.arn,google.subject=assertion.account",
                "google.subject",
            ),
            (
                "google.subject=assertion.arn,attribute.x=assertion.arn.extract(",
                "attribute.x",
            ),
            ("google.subject", "attribute mapping"),
            ("{\"google.subject\": 1}", "attribute mapping"),
        ];
        for (text, expression) in cases {
            let e = AttributeMapping::parse(text).unwrap_err();
            assert_eq!(e.expression, expression, "{text}: {e}");
        }
        let a = AwsAssertion::from_arn(LAMBDA_ARN);
        let bad = AttributeMapping::parse("google.subject=assertion.nope").unwrap();
        assert!(
            bad.evaluate(&a)
                .unwrap_err()
                .message
                .contains("no such key")
        );
        let long = AttributeMapping::parse("google.subject=assertion.arn + assertion.arn").unwrap();
        assert!(long.evaluate(&a).unwrap_err().message.contains("127"));
        // Google's other documented limits.
        let many: Vec<(String, String)> = (0..=MAX_CUSTOM_ATTRIBUTES)
            .map(|i| (format!("attribute.a{i}"), "assertion.arn".to_string()))
            .chain([(
                "google.subject".to_string(),
                "assertion.account".to_string(),
            )])
            .collect();
        let e = AttributeMapping::from_pairs(many.clone()).unwrap_err();
        assert!(e.message.contains("51 custom attributes"), "{e}");
        let fifty = AttributeMapping::from_pairs(many[1..].to_vec()).unwrap();
        let arn = format!("{LAMBDA_ARN}{}", "x".repeat(200));
        let e = fifty.evaluate(&AwsAssertion::from_arn(&arn)).unwrap_err();
        assert!(e.message.contains("8192"), "{e}");
        let huge = format!("google.subject='{}'", "x".repeat(MAX_EXPRESSION_CHARS));
        let e = AttributeMapping::parse(&huge).unwrap_err();
        assert!(e.message.contains("2048"), "{e}");
        let huge = format!("'{}' == 'x'", "x".repeat(MAX_CONDITION_CHARS));
        let e = AttributeCondition::parse(&huge).unwrap_err();
        assert!(e.message.contains("4096"), "{e}");
        let mapped = AttributeMapping::role_name().evaluate(&a).unwrap();
        let cond = AttributeCondition::parse("attribute.missing == 'x'").unwrap();
        assert!(
            cond.admits(&a, &mapped)
                .unwrap_err()
                .message
                .contains("attribute.missing")
        );
        let cond = AttributeCondition::parse("attribute.aws_role").unwrap();
        assert!(
            cond.admits(&a, &mapped)
                .unwrap_err()
                .message
                .contains("not a bool")
        );
    }
}
