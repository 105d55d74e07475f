//! The Authenticode signature of a CAB: a PKCS#7 SignedData (version 1) whose content is an
//! `SpcIndirectDataContent` for CAB data with the CAB's SHA-256 digest, signed by the publishing
//! identity with RSASSA-PKCS1-v1_5 over the authenticated attributes Windows expects
//! (contentType, SpcStatementType individual, an empty SpcSpOpusInfo, messageDigest), as
//! signtool and osslsigncode make it. No signing time and no timestamp (none is reachable
//! offline), so the same CAB bytes and identity always give the same signature.

use super::signing::{PublishingIdentity, SigningError};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::oid::ObjectIdentifier;
use der::{Any, Encode, Sequence, Tag, TagNumber};
use sha2::{Digest, Sha256};
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;

const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// SPC_INDIRECT_DATA_OBJID: the content type of every Authenticode signature.
const SPC_INDIRECT_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");
/// SPC_STATEMENT_TYPE_OBJID, with SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID as its one value.
const SPC_STATEMENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.11");
const SPC_INDIVIDUAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.21");
/// SPC_SP_OPUS_INFO_OBJID (program name and link; signtool always sends one, here empty).
const SPC_SP_OPUS_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.12");
/// SPC_CAB_DATA_OBJID: what the indirect data describes is a cabinet.
const SPC_CAB_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.25");

/// `SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue,
/// messageDigest DigestInfo }`.
#[derive(Sequence)]
struct SpcIndirectDataContent {
    data: SpcAttributeTypeAndOptionalValue,
    message_digest: DigestInfo,
}

#[derive(Sequence)]
struct SpcAttributeTypeAndOptionalValue {
    value_type: ObjectIdentifier,
    value: Any,
}

#[derive(Sequence)]
struct DigestInfo {
    digest_algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// The DER of the Authenticode signature of a CAB whose digest (see `cab::AUTHENTICODE_RANGES`)
/// is `cab_digest`.
pub(crate) fn sign(
    identity: &PublishingIdentity,
    cab_digest: &[u8; 32],
) -> Result<Vec<u8>, SigningError> {
    let der_error =
        |e: der::Error| SigningError::Sign { subject: identity.subject(), reason: e.to_string() };
    let content = indirect_data(cab_digest).map_err(der_error)?;
    // messageDigest covers the content's value octets, without its tag and length.
    let attributes =
        signed_attributes(&Sha256::digest(content.value()).into()).map_err(der_error)?;
    let signature = identity.sign_sha256(&attributes.to_der().map_err(der_error)?)?;
    assemble(identity, content, attributes, signature).map_err(der_error)
}

/// How long `sign`'s DER is for this identity, whatever the digest: every part has a fixed
/// length (the digests are 32 bytes, the signature as long as the key's modulus), so a CAB's
/// header, which holds the signature's length, is written before its content is hashed.
pub(crate) fn signed_len(identity: &PublishingIdentity) -> Result<usize, SigningError> {
    let der_error =
        |e: der::Error| SigningError::Sign { subject: identity.subject(), reason: e.to_string() };
    let content = indirect_data(&[0; 32]).map_err(der_error)?;
    let attributes = signed_attributes(&[0; 32]).map_err(der_error)?;
    let placeholder = vec![0; identity.signature_len()];
    Ok(assemble(identity, content, attributes, placeholder).map_err(der_error)?.len())
}

fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid, parameters: Some(Any::null()) }
}

/// The `SpcIndirectDataContent` for CAB data: `SpcLink.file` is the Unicode string
/// `<<<Obsolete>>>`, as every Authenticode signer writes for CABs.
fn indirect_data(cab_digest: &[u8; 32]) -> der::Result<Any> {
    let obsolete: Vec<u8> = "<<<Obsolete>>>".encode_utf16().flat_map(u16::to_be_bytes).collect();
    // SpcString.unicode [0] IMPLICIT BMPString, inside SpcLink.file [2] EXPLICIT.
    let unicode =
        Any::new(Tag::ContextSpecific { constructed: false, number: TagNumber::N0 }, obsolete)?;
    let link = Any::new(
        Tag::ContextSpecific { constructed: true, number: TagNumber::N2 },
        unicode.to_der()?,
    )?;
    let content = SpcIndirectDataContent {
        data: SpcAttributeTypeAndOptionalValue { value_type: SPC_CAB_DATA, value: link },
        message_digest: DigestInfo {
            digest_algorithm: algorithm(SHA256),
            digest: OctetString::new(cab_digest.to_vec())?,
        },
    };
    Any::encode_from(&content)
}

fn attribute(oid: ObjectIdentifier, value: Any) -> der::Result<Attribute> {
    Ok(Attribute { oid, values: SetOfVec::try_from(vec![value])? })
}

/// The authenticated attributes, in DER's SET OF order.
fn signed_attributes(content_digest: &[u8; 32]) -> der::Result<SetOfVec<Attribute>> {
    SetOfVec::try_from(vec![
        attribute(CONTENT_TYPE, Any::encode_from(&SPC_INDIRECT_DATA)?)?,
        attribute(SPC_STATEMENT_TYPE, Any::encode_from(&vec![SPC_INDIVIDUAL])?)?,
        attribute(SPC_SP_OPUS_INFO, Any::new(Tag::Sequence, Vec::new())?)?,
        attribute(MESSAGE_DIGEST, Any::encode_from(&OctetString::new(content_digest.to_vec())?)?)?,
    ])
}

fn assemble(
    identity: &PublishingIdentity,
    content: Any,
    attributes: SetOfVec<Attribute>,
    signature: Vec<u8>,
) -> der::Result<Vec<u8>> {
    let signer = identity.certificate();
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: signer.tbs_certificate.issuer.clone(),
            serial_number: signer.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: algorithm(SHA256),
        signed_attrs: Some(attributes),
        signature_algorithm: algorithm(RSA_ENCRYPTION),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let mut certificates = Vec::new();
    for certificate in identity.certificates() {
        let choice = cms::cert::CertificateChoices::Certificate(certificate.clone());
        if !certificates.contains(&choice) {
            certificates.push(choice);
        }
    }
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![algorithm(SHA256)])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: SPC_INDIRECT_DATA,
            econtent: Some(content),
        },
        certificates: Some(CertificateSet(SetOfVec::try_from(certificates)?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
    };
    ContentInfo { content_type: SIGNED_DATA, content: Any::encode_from(&signed_data)? }.to_der()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_indirect_data_is_the_cab_link_and_the_sha256_digest() {
        let digest = [0xab; 32];
        let der = indirect_data(&digest).unwrap().to_der().unwrap();
        let mut expected = String::from("3061"); // SpcIndirectDataContent, 97 bytes
        expected += "302c060a2b060104018237020119"; // SPC_CAB_DATA_OBJID
        expected += "a21e801c"; // SpcLink.file [2] { SpcString.unicode [0] (28 bytes) }
        expected += &hex::encode(
            "<<<Obsolete>>>".encode_utf16().flat_map(u16::to_be_bytes).collect::<Vec<u8>>(),
        );
        expected += "3031300d060960864801650304020105000420"; // DigestInfo: sha256, NULL, 32 bytes
        expected += &hex::encode(digest);
        assert_eq!(hex::encode(der), expected);
    }

    #[test]
    fn the_attributes_are_in_der_set_order() {
        let der = signed_attributes(&[7; 32]).unwrap().to_der().unwrap();
        assert_eq!(der[0], 0x31, "a SET, as it is signed");
        // DER sorts a SET OF by encoding, so by each attribute's length first: SpcSpOpusInfo
        // (16 bytes), contentType (25), SpcStatementType (28), messageDigest (47).
        let text = hex::encode(&der);
        let expected = [
            "3010060a2b06010401823702010c31023000",
            "301906092a864886f70d010903310c060a2b060104018237020104",
            "301c060a2b06010401823702010b310e300c060a2b060104018237020115",
            "302f06092a864886f70d01090431220420",
        ];
        let mut at = 4;
        for attribute in expected {
            assert_eq!(&text[at..at + attribute.len()], attribute, "in {text}");
            at += attribute.len();
            if attribute.ends_with("0420") {
                at += 64;
            }
        }
        assert_eq!(at, text.len());
    }
}
