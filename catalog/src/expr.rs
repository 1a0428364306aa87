//! Predicates (`aedb::query::plan::Expr`): the 14 operators of the original, with the builder
//! sugar `col("x").eq(..)`. Defined here because schemas hold them too (partial indexes, checks).

use serde::{Deserialize, Serialize};

use crate::types::Value;

/// Deeper expressions are refused (leaf depth 1).
pub const MAX_EXPR_DEPTH: usize = 32;
pub const MAX_EXPR_IN_LIST_VALUES: usize = 10_000;
pub const MAX_LIKE_PATTERN_BYTES: usize = 256;

// Variant order is part of the file format (catalog entries): pinned by catalog/tests/golden.rs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    Eq(String, Value),
    Ne(String, Value),
    Lt(String, Value),
    Lte(String, Value),
    Gt(String, Value),
    Gte(String, Value),
    In(String, Vec<Value>),
    /// Inclusive on both ends.
    Between(String, Value, Value),
    IsNull(String),
    IsNotNull(String),
    /// `%` matches any run of bytes, `_` exactly one; Text columns only.
    Like(String, String),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

impl Expr {
    pub fn and(self, other: Expr) -> Expr {
        Expr::And(Box::new(self), Box::new(other))
    }

    pub fn or(self, other: Expr) -> Expr {
        Expr::Or(Box::new(self), Box::new(other))
    }

    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }

    /// Nesting depth (a comparison is 1).
    pub fn depth(&self) -> usize {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => 1 + a.depth().max(b.depth()),
            Expr::Not(a) => 1 + a.depth(),
            _ => 1,
        }
    }

    /// Every column the expression names.
    pub fn columns(&self, out: &mut Vec<String>) {
        match self {
            Expr::Eq(c, _)
            | Expr::Ne(c, _)
            | Expr::Lt(c, _)
            | Expr::Lte(c, _)
            | Expr::Gt(c, _)
            | Expr::Gte(c, _)
            | Expr::In(c, _)
            | Expr::Between(c, _, _)
            | Expr::IsNull(c)
            | Expr::IsNotNull(c)
            | Expr::Like(c, _) => out.push(c.clone()),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.columns(out);
                b.columns(out);
            }
            Expr::Not(a) => a.columns(out),
        }
    }
}

/// A column reference for the builder sugar.
pub struct Col(String);

pub fn col(name: &str) -> Col {
    Col(name.to_string())
}

/// A literal value (sugar).
pub fn lit(value: impl Into<Value>) -> Value {
    value.into()
}

impl Col {
    pub fn eq(self, v: impl Into<Value>) -> Expr {
        Expr::Eq(self.0, v.into())
    }
    pub fn neq(self, v: impl Into<Value>) -> Expr {
        Expr::Ne(self.0, v.into())
    }
    pub fn gt(self, v: impl Into<Value>) -> Expr {
        Expr::Gt(self.0, v.into())
    }
    pub fn gte(self, v: impl Into<Value>) -> Expr {
        Expr::Gte(self.0, v.into())
    }
    pub fn lt(self, v: impl Into<Value>) -> Expr {
        Expr::Lt(self.0, v.into())
    }
    pub fn lte(self, v: impl Into<Value>) -> Expr {
        Expr::Lte(self.0, v.into())
    }
    pub fn between(self, lo: impl Into<Value>, hi: impl Into<Value>) -> Expr {
        Expr::Between(self.0, lo.into(), hi.into())
    }
    pub fn in_(self, values: Vec<Value>) -> Expr {
        Expr::In(self.0, values)
    }
    pub fn like(self, pattern: &str) -> Expr {
        Expr::Like(self.0, pattern.to_string())
    }
    pub fn is_null(self) -> Expr {
        Expr::IsNull(self.0)
    }
    pub fn is_not_null(self) -> Expr {
        Expr::IsNotNull(self.0)
    }
}

/// `%`/`_` matching over bytes, iterative with backtracking on the last `%` (linear in practice,
/// never exponential).
pub fn like_matches(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len()
            && (pattern[p] == b'_' || (pattern[p] != b'%' && pattern[p] == text[t]))
        {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == b'%' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'%' {
        p += 1;
    }
    p == pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_and_builders() {
        assert!(like_matches(b"alice", b"al%"));
        assert!(like_matches(b"alice", b"%ic_"));
        assert!(!like_matches(b"alice", b"%bob%"));
        assert!(like_matches(b"", b"%"));
        assert!(!like_matches(b"a", b""));
        let e = col("age")
            .gte(Value::Integer(3))
            .and(col("name").like("a%").not());
        assert_eq!(e.depth(), 3);
        let mut cols = Vec::new();
        e.columns(&mut cols);
        assert_eq!(cols, vec!["age".to_string(), "name".to_string()]);
    }
}
