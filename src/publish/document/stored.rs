//! A published update's stored document, read back so that its next revision can be written:
//! revised (`ferry publish revise`) or expired. Only documents `ferry publish` wrote are read:
//! what is read is written again and must give the stored document byte for byte, so a
//! document changed since, or written by anything else, is refused rather than half understood.

use super::*;
use crate::catalog::xml::{decode_attribute, resolve_reference};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use std::collections::HashMap;

/// A published update's newest document, as fields and the installer's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUpdate {
    fields: UpdateFields,
    parts: InstallerParts,
}

impl StoredUpdate {
    /// Reads the document of update `id`; refused unless `ferry publish` wrote it as it is.
    pub fn read(id: Guid, document: &str) -> Result<StoredUpdate, InvalidUpdate> {
        let wrong = |why| InvalidUpdate::NotPublishedHere(id, why);
        let stored = Walk::read(document).and_then(Walk::into_stored).map_err(wrong)?;
        if stored.fields.id != id {
            return Err(wrong("its identity is not the update's"));
        }
        if stored.document() != document {
            return Err(wrong("it is not as ferry publish writes it (changed since?)"));
        }
        Ok(stored)
    }

    pub fn fields(&self) -> &UpdateFields {
        &self.fields
    }

    /// Whether the command-line handler installs it (an EXE, with detection rules).
    pub fn is_exe(&self) -> bool {
        self.parts.handler == Handler::CommandLine
    }

    pub fn document(&self) -> String {
        write_update(&self.fields, &self.parts)
    }

    /// The next revision with new `details` (and for an EXE, new detection rules), written at
    /// `created`. An expired update is not revised: clients no longer look at it.
    pub fn revised(
        &self,
        details: Details,
        detection: Option<&[DetectRule]>,
        created: DateTime<Utc>,
    ) -> Result<StoredUpdate, InvalidUpdate> {
        self.not_expired()?;
        let mut parts = self.parts.clone();
        if let Some(detection) = detection {
            if !self.is_exe() {
                return Err(InvalidUpdate::DetectionOfInstaller(self.fields.id));
            }
            check_detection(detection)?;
            parts.rules = written(|x| rules::write_detection(x, detection));
        }
        let fields = UpdateFields { details, created, ..self.next_fields()? }.checked()?;
        Ok(StoredUpdate { fields, parts })
    }

    /// The next revision, expired: what WSUS does when a published update is expired (clients
    /// stop being offered it; it stays in the catalog).
    pub fn expired(&self) -> Result<StoredUpdate, InvalidUpdate> {
        self.not_expired()?;
        let fields = UpdateFields { state: PublicationState::Expired, ..self.next_fields()? };
        Ok(StoredUpdate { fields, parts: self.parts.clone() })
    }

    /// Whether this revision says anything `earlier` did not (beyond its number and date).
    pub fn changes(&self, earlier: &StoredUpdate) -> bool {
        let (now, then) = (&self.fields, &earlier.fields);
        now.details != then.details || now.state != then.state || self.parts != earlier.parts
    }

    fn not_expired(&self) -> Result<(), InvalidUpdate> {
        match self.fields.state {
            PublicationState::Published => Ok(()),
            PublicationState::Expired => {
                Err(InvalidUpdate::Expired(self.fields.id, self.fields.details.title.clone()))
            }
        }
    }

    fn next_fields(&self) -> Result<UpdateFields, InvalidUpdate> {
        let next = self
            .fields
            .revision
            .checked_add(1)
            .filter(|n| *n <= i32::MAX as u32)
            .ok_or(InvalidUpdate::Revision(self.fields.revision.saturating_add(1)))?;
        Ok(UpdateFields { revision: next, ..self.fields.clone() })
    }
}

/// The root's children whose elements are kept as written.
const KEPT: [&str; 3] = ["upd:ApplicabilityRules", "upd:Files", "upd:HandlerSpecificData"];

/// What one pass over the document found.
#[derive(Default)]
struct Walk {
    identity: Option<(String, String)>,
    properties: HashMap<String, String>,
    behavior: String,
    texts: HashMap<&'static str, String>,
    supersedes: Vec<String>,
    /// `AtLeastOne` clauses: whether a category clause, and the ids named.
    clauses: Vec<(bool, Vec<String>)>,
    kept: HashMap<&'static str, String>,
}

impl Walk {
    fn read(document: &str) -> Result<Walk, &'static str> {
        let mut reader = Reader::from_str(document);
        let config = reader.config_mut();
        config.trim_text(false);
        config.expand_empty_elements = false;
        config.check_end_names = true;
        let (mut walk, mut path, mut text) = (Walk::default(), Vec::<String>::new(), String::new());
        let malformed = "it is not well-formed XML";
        loop {
            let start = reader.buffer_position() as usize;
            match reader.read_event().map_err(|_| malformed)? {
                Event::Start(e) => {
                    let name = element_name(&e)?;
                    if let Some(kept) = KEPT.iter().find(|k| path.len() == 1 && **k == name) {
                        reader.read_to_end(e.name()).map_err(|_| malformed)?;
                        let end = reader.buffer_position() as usize;
                        walk.kept.insert(kept, document[start..end].to_owned());
                        continue;
                    }
                    walk.element(&path, &name, &e)?;
                    path.push(name);
                    text.clear();
                }
                Event::Empty(e) => {
                    let name = element_name(&e)?;
                    let behavior = ["upd:InstallationBehavior", "upd:UninstallationBehavior"];
                    if path.len() == 2 && behavior.contains(&name.as_str()) {
                        let end = reader.buffer_position() as usize;
                        walk.behavior.push_str(&document[start..end]);
                    }
                    walk.element(&path, &name, &e)?;
                }
                Event::Text(t) => text.push_str(std::str::from_utf8(&t).map_err(|_| malformed)?),
                Event::GeneralRef(r) => {
                    let name = std::str::from_utf8(&r).map_err(|_| malformed)?;
                    text.push(resolve_reference(name).map_err(|_| malformed)?);
                }
                Event::End(_) => walk.end(path.pop().unwrap_or_default(), &mut text),
                Event::Eof => return Ok(walk),
                _ => return Err("it holds what ferry publish never writes"),
            }
        }
    }

    /// An element's attributes, where they matter.
    fn element(&mut self, path: &[String], name: &str, e: &BytesStart) -> Result<(), &'static str> {
        let parent = path.last().map(String::as_str).unwrap_or("");
        match (parent, name) {
            ("upd:Update", "upd:UpdateIdentity") if self.identity.is_none() => {
                let mut a = attributes(e)?;
                let id = a.remove("UpdateID").ok_or("its identity names no update")?;
                let revision = a.remove("RevisionNumber").ok_or("its identity has no revision")?;
                self.identity = Some((id, revision));
            }
            ("upd:Update", "upd:Properties") => self.properties = attributes(e)?,
            ("upd:SupersededUpdates", "upd:UpdateIdentity") => {
                self.supersedes.push(attributes(e)?.remove("UpdateID").unwrap_or_default());
            }
            ("upd:Prerequisites", "upd:AtLeastOne") => {
                let category = attributes(e)?.get("IsCategory").is_some_and(|c| c == "true");
                self.clauses.push((category, Vec::new()));
            }
            ("upd:AtLeastOne", "upd:UpdateIdentity") => {
                let id = attributes(e)?.remove("UpdateID").unwrap_or_default();
                self.clauses.last_mut().ok_or("a prerequisite outside a clause")?.1.push(id);
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, name: String, text: &mut String) {
        let field = ["upd:Title", "upd:Description", "upd:MoreInfoUrl", "upd:KBArticleID"]
            .into_iter()
            .find(|f| *f == name);
        if let Some(field) = field {
            self.texts.insert(field, std::mem::take(text));
        }
    }

    fn into_stored(mut self) -> Result<StoredUpdate, &'static str> {
        let (id, revision) = self.identity.take().ok_or("no update identity")?;
        let property = |name: &str| self.properties.get(name).map(String::as_str);
        let handler = match property("Handler") {
            Some(ns::COMMAND_LINE) => Handler::CommandLine,
            Some(ns::WINDOWS_INSTALLER) => Handler::WindowsInstaller,
            _ => return Err("its handler is not one ferry publish uses"),
        };
        let state = match property("PublicationState") {
            Some("Published") => PublicationState::Published,
            Some("Expired") => PublicationState::Expired,
            _ => return Err("its publication state is neither Published nor Expired"),
        };
        let created = property("CreationDate")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .ok_or("its creation date is not a date")?
            .with_timezone(&Utc);
        let publisher_id = guid(property("PublisherID").unwrap_or_default())?;
        let (categories, groups): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.clauses).into_iter().partition(|(category, _)| *category);
        let [(_, product), (_, classification)] = <[_; 2]>::try_from(categories)
            .map_err(|_| "it does not name exactly a product and a classification")?;
        let one = |ids: Vec<String>| match ids.as_slice() {
            [id] => guid(id),
            _ => Err("a category clause does not name exactly one category"),
        };
        let details = self.details(one(classification)?, groups)?;
        let fields = UpdateFields {
            id: guid(&id)?,
            revision: revision.parse().map_err(|_| "its revision is not a number")?,
            state,
            created,
            publisher_id,
            product_id: one(product)?,
            details,
        };
        let parts = self.parts(handler)?;
        Ok(StoredUpdate { fields, parts })
    }

    fn details(
        &mut self,
        classification: Guid,
        groups: Vec<(bool, Vec<String>)>,
    ) -> Result<Details, &'static str> {
        let prerequisites = groups
            .into_iter()
            .map(|(_, ids)| {
                let ids = ids.iter().map(|id| guid(id)).collect::<Result<Vec<_>, _>>()?;
                PrerequisiteGroup::any_of(ids).map_err(|_| "an empty prerequisite clause")
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut text = |name| self.texts.remove(name);
        Ok(Details {
            title: text("upd:Title").ok_or("it has no title")?,
            description: text("upd:Description"),
            more_info_url: text("upd:MoreInfoUrl"),
            kb_article: text("upd:KBArticleID")
                .map(|kb| kb.parse().map_err(|_| "its KB article is not a number"))
                .transpose()?,
            severity: self
                .properties
                .get("MsrcSeverity")
                .map(|s| s.parse().map_err(|_| "its severity is not an MSRC severity"))
                .transpose()?,
            classification: Classification::from_id(classification)
                .ok_or("its classification is not one of Microsoft's")?,
            supersedes: self.supersedes.iter().map(|id| guid(id)).collect::<Result<_, _>>()?,
            prerequisites,
        })
    }

    fn parts(&mut self, handler: Handler) -> Result<InstallerParts, &'static str> {
        let mut kept = |name| self.kept.remove(name).ok_or("a part of it is missing");
        Ok(InstallerParts {
            handler,
            size: self
                .properties
                .get("MaxDownloadSize")
                .and_then(|s| s.parse().ok())
                .ok_or("its download size is not a number")?,
            behavior: std::mem::take(&mut self.behavior),
            rules: kept("upd:ApplicabilityRules")?,
            files: kept("upd:Files")?,
            handler_data: kept("upd:HandlerSpecificData")?,
        })
    }
}

fn guid(text: &str) -> Result<Guid, &'static str> {
    Guid::parse(text).map_err(|_| "an update id is not a GUID")
}

fn element_name(e: &BytesStart) -> Result<String, &'static str> {
    String::from_utf8(e.name().as_ref().to_vec()).map_err(|_| "it is not UTF-8")
}

/// An element's attributes, decoded.
fn attributes(e: &BytesStart) -> Result<HashMap<String, String>, &'static str> {
    let bad = "an attribute is malformed";
    e.attributes()
        .map(|a| {
            let a = a.map_err(|_| bad)?;
            let key = String::from_utf8(a.key.as_ref().to_vec()).map_err(|_| bad)?;
            Ok((key, decode_attribute(&a.value).map_err(|_| bad)?.into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Sha1Digest, Sha256Digest};

    fn id(n: u8) -> Guid {
        Guid::parse(&format!("6f1d3a52-5b0e-4c39-9b8a-0d7e5a2c1b{n:02x}")).unwrap()
    }

    fn at(second: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-12-05T10:00:{second:02}.123Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn file_rule(path: &str) -> DetectRule {
        DetectRule::FileExists(FilePath::new(Some(KnownFolder::ProgramFiles), path).unwrap())
    }

    fn exe() -> Installer {
        let rules = vec![file_rule("Contoso\\notes.exe")];
        Installer::Exe(ExeInstaller::new("setup.exe", Some("/S"), vec![], rules).unwrap())
    }

    fn msi() -> Installer {
        let product = MsiProduct {
            product_code: "{6F1D3A52-5B0E-4C39-9B8A-0D7E5A2C1B99}".parse().unwrap(),
            version: "1.2.3".parse().unwrap(),
            language: Lcid(1033),
            manufacturer: "Contoso".into(),
            name: "Notes".into(),
            upgrade_code: None,
        };
        Installer::Msi(MsiInstaller::new("notes.msi", product, Some("ALLUSERS=1")).unwrap())
    }

    fn msp() -> Installer {
        let code = |n: u8| format!("{{6F1D3A52-5B0E-4C39-9B8A-0D7E5A2C1C{n:02X}}}");
        let patch = MspPatch {
            patch_code: code(1).parse().unwrap(),
            obsoletes: vec![code(2).parse().unwrap()],
            target_products: vec![code(3).parse().unwrap(), code(4).parse().unwrap()],
        };
        Installer::Msp(MspInstaller::new("notes.msp", patch).unwrap())
    }

    fn published(installer: Installer) -> PublishedUpdate {
        let vendor = Vendor::new(CategoryName::new("Contoso").unwrap());
        let details = Details {
            title: "Notes <1.2.3> & more".into(),
            description: Some("Line one\r\nline \"two\" & 'three'".into()),
            more_info_url: Some("https://contoso.example/?a=1&b=2".into()),
            kb_article: Some("KB900123".parse().unwrap()),
            severity: Some(MsrcSeverity::Important),
            classification: Classification::Updates,
            supersedes: vec![id(3), id(2)],
            prerequisites: vec![PrerequisiteGroup::any_of(vec![id(4), id(5)]).unwrap()],
        };
        PublishedUpdate::new(NewUpdate {
            id: id(1),
            revision: 100,
            details,
            product: Product::new(vendor, CategoryName::new("Notes").unwrap()),
            installer,
            payload: Payload::new("x_1.cab", 99, Sha1Digest([1; 20]), Sha256Digest([2; 32]), at(1))
                .unwrap(),
            created: at(2),
            publisher_id: id(9),
        })
        .unwrap()
    }

    #[test]
    fn what_ferry_publish_wrote_reads_back_to_the_same_fields_and_bytes() {
        for installer in [exe(), msi(), msp()] {
            let update = published(installer);
            let document = update.document();
            let stored = StoredUpdate::read(id(1), &document).unwrap();
            assert_eq!(stored.fields(), update.fields());
            assert_eq!(
                stored.fields().details.description.as_deref(),
                Some("Line one\nline \"two\" & 'three'")
            );
            assert_eq!(stored.document(), document);
        }
    }

    #[test]
    fn a_document_ferry_publish_did_not_write_as_it_is_is_refused() {
        let document = published(exe()).document();
        let cases = [
            ("not xml".to_string(), "no update identity"),
            (
                document.replacen("<upd:Update ", "<upd:Update x=\"1\" ", 1),
                "not as ferry publish writes it",
            ),
            (document.replacen("Notes &lt;", "Notes &#60;", 1), "not as ferry publish writes it"),
            (
                document.replacen("<upd:KBArticleID>", "<upd:Foo />", 1).replacen(
                    "</upd:KBArticleID>",
                    "",
                    1,
                ),
                "not as ferry publish writes it",
            ),
            (document.replace("IsCategory=\"true\"", ""), "exactly a product and a classification"),
            (
                document.replacen("RevisionNumber=\"100\"", "RevisionNumber=\"x\"", 1),
                "revision is not a number",
            ),
            (
                document.replacen("State=\"Published", "State=\"Draft", 1),
                "neither Published nor Expired",
            ),
            (document.replacen("<upd:Title>", "<!-- x --><upd:Title>", 1), "never writes"),
            (document[..document.len() - 3].to_string(), "not well-formed"),
        ];
        for (bad, said) in cases {
            let e = StoredUpdate::read(id(1), &bad).unwrap_err().to_string();
            assert!(e.contains(said) && e.contains("not one ferry publish wrote"), "{said}: {e}");
        }
        let e = StoredUpdate::read(id(7), &document).unwrap_err().to_string();
        assert!(e.contains("not the update's"), "{e}");
    }

    #[test]
    fn a_revision_is_the_next_number_with_new_details_and_the_same_installer() {
        let stored = StoredUpdate::read(id(1), &published(exe()).document()).unwrap();
        let mut details = stored.fields().details.clone();
        details.title = "  Notes 1.2.3, fixed  ".into();
        details.supersedes = vec![];
        let rules = [file_rule("Contoso\\notes2.exe")];
        let revised = stored.revised(details, Some(&rules), at(30)).unwrap();
        let f = revised.fields();
        assert_eq!(
            (f.revision, f.created, f.details.title.as_str()),
            (101, at(30), "Notes 1.2.3, fixed")
        );
        assert!(revised.changes(&stored));
        let document = revised.document();
        assert!(document.contains("notes2.exe") && !document.contains("notes.exe\""), "{document}");
        assert!(!document.contains("SupersededUpdates"));
        let parsed = crate::catalog::parse::parse_update(document.as_bytes()).unwrap();
        assert_eq!(parsed.update.identity.revision_number, 101);
        // Read back, the revision is the next one's starting point.
        assert_eq!(&StoredUpdate::read(id(1), &document).unwrap(), &revised);
        let same = stored.revised(stored.fields().details.clone(), None, at(40)).unwrap();
        assert!(!same.changes(&stored), "a new date alone is no change");
    }

    #[test]
    fn revisions_are_refused_where_they_would_be_wrong() {
        let exe = StoredUpdate::read(id(1), &published(exe()).document()).unwrap();
        let details = || exe.fields().details.clone();
        let mut itself = details();
        itself.supersedes.push(id(1));
        assert_eq!(exe.revised(itself, None, at(3)), Err(InvalidUpdate::SupersedesItself(id(1))));
        let mut two_lines = details();
        two_lines.title = "one\ntwo".into();
        assert!(matches!(
            exe.revised(two_lines, None, at(3)),
            Err(InvalidUpdate::ControlCharacter { .. })
        ));
        assert_eq!(exe.revised(details(), Some(&[]), at(3)), Err(InvalidUpdate::NoDetection));
        let msi = StoredUpdate::read(id(1), &published(msi()).document()).unwrap();
        let rules = [file_rule("x.exe")];
        assert_eq!(
            msi.revised(msi.fields().details.clone(), Some(&rules), at(3)),
            Err(InvalidUpdate::DetectionOfInstaller(id(1)))
        );
        let expired = exe.expired().unwrap();
        assert_eq!(
            (expired.fields().revision, expired.fields().state),
            (101, PublicationState::Expired)
        );
        assert!(expired.document().contains("PublicationState=\"Expired\""));
        let title = exe.fields().details.title.clone();
        assert_eq!(expired.expired(), Err(InvalidUpdate::Expired(id(1), title.clone())));
        assert_eq!(
            expired.revised(details(), None, at(3)),
            Err(InvalidUpdate::Expired(id(1), title))
        );
        let last = StoredUpdate::read(
            id(1),
            &exe.document().replacen("RevisionNumber=\"100\"", "RevisionNumber=\"2147483647\"", 1),
        )
        .unwrap();
        assert!(matches!(last.expired(), Err(InvalidUpdate::Revision(_))));
    }
}
