//! Domain values as PostgreSQL columns: ids as their canonical text (a row whose text is not
//! one reads as an error naming it, never as a wrong id), an approval's action by its WSUS name.

use crate::admin::Action;
use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use std::error::Error;

type Failure = Box<dyn Error + Sync + Send>;

macro_rules! text_column {
    ($value:ty, $read:expr) => {
        impl ToSql for $value {
            fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Failure> {
                self.as_str().to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <&str as ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $value {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<$value, Failure> {
                let text = <&str as FromSql>::from_sql(ty, raw)?;
                let read: fn(&str) -> Result<$value, Failure> = $read;
                read(text)
            }

            fn accepts(ty: &Type) -> bool {
                <&str as FromSql>::accepts(ty)
            }
        }
    };
}

text_column!(crate::ids::GroupId, |t| Ok(crate::ids::GroupId::parse(t)?));
text_column!(crate::ids::UpdateId, |t| Ok(crate::ids::UpdateId::parse(t)?));
text_column!(crate::ids::ComputerId, |t| Ok(crate::ids::ComputerId::parse(t)?));
text_column!(crate::store::InstallerKind, |t| {
    crate::store::InstallerKind::parse(t)
        .ok_or_else(|| format!("{t:?} is not an installer kind (msi, msp, exe)").into())
});
// An action this ferry does not know (written by hand, or by a newer ferry) offers nothing:
// read as Block, as in the SQLite backend.
text_column!(Action, |name| {
    Ok(Action::from_name(name).unwrap_or_else(|| {
        tracing::warn!("approval action {name:?} is unknown: read as Block");
        Action::Block
    }))
});
