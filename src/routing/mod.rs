//! PLACEHOLDER (replaced by the dialplan branch).
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_CONTEXT: &str = "default";
pub const PUBLIC_CONTEXT: &str = "public";

#[derive(Debug, Clone, Default)]
pub struct Dialplan {}

impl Dialplan {
    pub fn builtin() -> Dialplan {
        Dialplan {}
    }
    pub fn is_builtin(&self) -> bool {
        true
    }
    pub fn route(&self, context: &str, number: &str) -> Decision {
        Decision {
            context: context.to_string(),
            rule: None,
            target: Target::User(number.to_string()),
            caller_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub context: String,
    pub rule: Option<RuleRef>,
    pub target: Target,
    pub caller_id: Option<CallerId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    pub name: String,
    pub file: PathBuf,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    User(String),
    Group {
        members: Vec<String>,
        strategy: Strategy,
        timeout: Duration,
    },
    Gateway {
        gateway: String,
        number: String,
    },
    Redirect {
        contact: String,
    },
    Reject {
        status: u16,
        reason: Option<String>,
    },
    NoMatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Parallel,
    Sequential,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallerId {
    pub number: Option<String>,
    pub name: Option<String>,
}
