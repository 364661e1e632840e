//! From rustls' extracted secrets to the kernel's `crypto_info`: what a
//! kTLS hand-off gives `setsockopt(SOL_TLS, TLS_TX/TLS_RX)` once the
//! handshake is done (`dangerous_into_kernel_connection`). The kernel
//! builds each record's nonce as rustls does: salt ‖ IV, XORed with the
//! record sequence number (TLS 1.3), so the salt is the first 4 bytes of
//! rustls' 12-byte IV and the rest is the kernel's IV.
//!
//! TLS 1.2 AES-GCM is the exception: its 8-byte explicit nonce travels in
//! each record, and the kernel does not XOR the sequence in but counts the
//! IV up by one per record, while rustls sent `E ^ seq` (E: its 8 bytes of
//! IV). Handing over E itself would reuse the nonce of rustls' first
//! record (the Finished) under the same key, which breaks GCM. So the
//! kernel starts at the next 2^32-aligned block after E: rustls' nonces
//! (fewer than 2^32 records) all lie in E's block, and the kernel's cannot
//! reach back into it before 2^64 - 2^32 records.

use rustls::{ConnectionTrafficSecrets, ProtocolVersion};

use crate::sys::ktls::{
    AesGcm128, AesGcm256, Chacha20Poly1305, CryptoInfo, InfoHeader, TLS_1_2_VERSION,
    TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128, TLS_CIPHER_AES_GCM_256, TLS_CIPHER_CHACHA20_POLY1305,
};

/// The kernel's view of one direction; `None` for a version or cipher
/// the kernel cannot take.
pub fn crypto_info(
    version: ProtocolVersion,
    seq: u64,
    secrets: &ConnectionTrafficSecrets,
) -> Option<CryptoInfo> {
    let version = match version {
        ProtocolVersion::TLSv1_2 => TLS_1_2_VERSION,
        ProtocolVersion::TLSv1_3 => TLS_1_3_VERSION,
        _ => return None,
    };
    let rec_seq = seq.to_be_bytes();
    let split = |iv: &[u8]| -> ([u8; 4], [u8; 8]) {
        let mut salt = [0; 4];
        let mut rest = [0; 8];
        salt.copy_from_slice(&iv[..4]);
        rest.copy_from_slice(&iv[4..12]);
        (salt, rest)
    };
    let tls12 = version == TLS_1_2_VERSION;
    Some(match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
            let (salt, iv) = split(iv.as_ref());
            let iv = if tls12 { past_used_nonces(iv) } else { iv };
            CryptoInfo::AesGcm128(AesGcm128 {
                info: InfoHeader {
                    version,
                    cipher_type: TLS_CIPHER_AES_GCM_128,
                },
                iv,
                key: key.as_ref().try_into().ok()?,
                salt,
                rec_seq,
            })
        }
        ConnectionTrafficSecrets::Aes256Gcm { key, iv } => {
            let (salt, iv) = split(iv.as_ref());
            let iv = if tls12 { past_used_nonces(iv) } else { iv };
            CryptoInfo::AesGcm256(AesGcm256 {
                info: InfoHeader {
                    version,
                    cipher_type: TLS_CIPHER_AES_GCM_256,
                },
                iv,
                key: key.as_ref().try_into().ok()?,
                salt,
                rec_seq,
            })
        }
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
            CryptoInfo::Chacha20Poly1305(Chacha20Poly1305 {
                info: InfoHeader {
                    version,
                    cipher_type: TLS_CIPHER_CHACHA20_POLY1305,
                },
                iv: iv.as_ref().try_into().ok()?,
                key: key.as_ref().try_into().ok()?,
                rec_seq,
            })
        }
        _ => return None,
    })
}

/// The first TLS 1.2 GCM explicit nonce for the kernel: the start of the
/// 2^32 block after the one rustls' nonces (`E ^ seq`) came from.
pub fn past_used_nonces(e: [u8; 8]) -> [u8; 8] {
    let e = u64::from_be_bytes(e);
    (((e >> 32).wrapping_add(1)) << 32).to_be_bytes()
}

#[cfg(test)]
mod tests {
    //! The proof without a kTLS kernel: a record sealed in user space from
    //! nothing but the `crypto_info` fields, the way the kernel seals one,
    //! is accepted and decrypted by a rustls client.

    use std::io::Read;
    use std::sync::Arc;

    use ring::aead;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

    use super::*;

    fn handshake(suite: rustls::SupportedCipherSuite) -> (ClientConnection, ServerConnection) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.self_signed(&ca_key).unwrap();
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![suite];
        let provider = Arc::new(provider);
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ca_key.serialize_der().into());
        let mut server_cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[suite.version()])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        server_cfg.enable_secret_extraction = true;
        let mut roots = RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let client_cfg = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[suite.version()])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut c = ClientConnection::new(
            Arc::new(client_cfg),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut s = ServerConnection::new(Arc::new(server_cfg)).unwrap();
        for _ in 0..20 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                s.read_tls(&mut buf.as_slice()).unwrap();
                s.process_new_packets().unwrap();
            }
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                let mut rd = buf.as_slice();
                while !rd.is_empty() {
                    c.read_tls(&mut rd).unwrap();
                    c.process_new_packets().unwrap();
                }
            }
        }
        assert!(!c.is_handshaking() && !s.is_handshaking());
        (c, s)
    }

    /// Seals one TLS 1.3 application-data record as the kernel does.
    fn seal(
        alg: &'static aead::Algorithm,
        key: &[u8],
        nonce_base: [u8; 12],
        seq: [u8; 8],
        data: &[u8],
    ) -> Vec<u8> {
        let mut nonce = nonce_base;
        for (n, s) in nonce[4..].iter_mut().zip(seq) {
            *n ^= s;
        }
        let mut inner = data.to_vec();
        inner.push(0x17); // the real content type
        let len = (inner.len() + alg.tag_len()) as u16;
        let header = [0x17, 0x03, 0x03, (len >> 8) as u8, len as u8];
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(alg, key).unwrap());
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(header),
            &mut inner,
        )
        .unwrap();
        let mut rec = header.to_vec();
        rec.extend_from_slice(&inner);
        rec
    }

    fn prove(suite: rustls::SupportedCipherSuite) {
        let (mut client, server) = handshake(suite);
        #[allow(deprecated)] // the same secrets dangerous_into_kernel_connection gives
        let secrets = server.dangerous_extract_secrets().unwrap();
        let (seq, tx) = secrets.tx;
        let info = crypto_info(ProtocolVersion::TLSv1_3, seq, &tx).expect("a kernel cipher");
        let record = match info {
            CryptoInfo::AesGcm128(i) => {
                assert_eq!(i.info.version, TLS_1_3_VERSION);
                let mut base = [0; 12];
                base[..4].copy_from_slice(&i.salt);
                base[4..].copy_from_slice(&i.iv);
                seal(
                    &aead::AES_128_GCM,
                    &i.key,
                    base,
                    i.rec_seq,
                    b"sealed like the kernel",
                )
            }
            CryptoInfo::AesGcm256(i) => {
                let mut base = [0; 12];
                base[..4].copy_from_slice(&i.salt);
                base[4..].copy_from_slice(&i.iv);
                seal(
                    &aead::AES_256_GCM,
                    &i.key,
                    base,
                    i.rec_seq,
                    b"sealed like the kernel",
                )
            }
            CryptoInfo::Chacha20Poly1305(i) => seal(
                &aead::CHACHA20_POLY1305,
                &i.key,
                i.iv,
                i.rec_seq,
                b"sealed like the kernel",
            ),
        };
        client.read_tls(&mut record.as_slice()).unwrap();
        client
            .process_new_packets()
            .expect("rustls decrypts the record");
        let mut got = Vec::new();
        let _ = client.reader().read_to_end(&mut got);
        assert_eq!(got, b"sealed like the kernel");
    }

    #[test]
    fn a_record_sealed_from_the_crypto_info_decrypts_in_rustls_aes_128_gcm() {
        prove(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256);
    }

    #[test]
    fn a_record_sealed_from_the_crypto_info_decrypts_in_rustls_aes_256_gcm() {
        prove(rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384);
    }

    #[test]
    fn a_record_sealed_from_the_crypto_info_decrypts_in_rustls_chacha20() {
        prove(rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256);
    }

    #[test]
    fn a_wrong_sequence_number_is_refused() {
        // The proof can fail: the same record with the next sequence number
        // is rejected by the client.
        let (mut client, server) =
            handshake(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256);
        #[allow(deprecated)]
        let secrets = server.dangerous_extract_secrets().unwrap();
        let (seq, tx) = secrets.tx;
        let Some(CryptoInfo::AesGcm128(i)) = crypto_info(ProtocolVersion::TLSv1_3, seq + 1, &tx)
        else {
            panic!("AES-128-GCM expected");
        };
        let mut base = [0; 12];
        base[..4].copy_from_slice(&i.salt);
        base[4..].copy_from_slice(&i.iv);
        let record = seal(&aead::AES_128_GCM, &i.key, base, i.rec_seq, b"x");
        client.read_tls(&mut record.as_slice()).unwrap();
        assert!(client.process_new_packets().is_err());
    }

    /// TLS 1.2 AES-GCM as the kernel sends it: the explicit nonce (the
    /// kernel's IV, counted up per record) in the record, the nonce salt ‖
    /// that IV without the sequence XORed in, the sequence in the AAD.
    #[test]
    fn a_tls12_gcm_record_from_the_crypto_info_decrypts_and_reuses_no_nonce() {
        let (mut client, server) =
            handshake(rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
        #[allow(deprecated)]
        let secrets = server.dangerous_extract_secrets().unwrap();
        let (seq, tx) = secrets.tx;
        let ConnectionTrafficSecrets::Aes128Gcm { iv: rustls_iv, .. } = &tx else {
            panic!("AES-128-GCM expected");
        };
        let Some(CryptoInfo::AesGcm128(i)) = crypto_info(ProtocolVersion::TLSv1_2, seq, &tx) else {
            panic!("AES-128-GCM expected");
        };
        assert_eq!(i.info.version, TLS_1_2_VERSION);
        // rustls' records so far used E ^ s; the kernel's first is not one.
        let e = u64::from_be_bytes(rustls_iv.as_ref()[4..].try_into().unwrap());
        let first = u64::from_be_bytes(i.iv);
        assert!(seq >= 1, "the Finished went under this key");
        for s in 0..seq + (1 << 20) {
            assert_ne!(first, e ^ s);
        }
        assert_ne!(first, e, "E itself is rustls' first nonce");

        let data = b"sealed like the kernel, TLS 1.2";
        let mut nonce = [0; 12];
        nonce[..4].copy_from_slice(&i.salt);
        nonce[4..].copy_from_slice(&i.iv);
        let mut aad = i.rec_seq.to_vec();
        aad.extend_from_slice(&[0x17, 0x03, 0x03]);
        aad.extend_from_slice(&(data.len() as u16).to_be_bytes());
        let key =
            aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &i.key).unwrap());
        let mut body = data.to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            &mut body,
        )
        .unwrap();
        let len = (8 + body.len()) as u16;
        let mut record = vec![0x17, 0x03, 0x03, (len >> 8) as u8, len as u8];
        record.extend_from_slice(&i.iv);
        record.extend_from_slice(&body);
        client.read_tls(&mut record.as_slice()).unwrap();
        client
            .process_new_packets()
            .expect("rustls decrypts the record");
        let mut got = Vec::new();
        let _ = client.reader().read_to_end(&mut got);
        assert_eq!(got, data);
    }

    #[test]
    fn the_kernels_tls12_nonces_start_in_the_next_block() {
        assert_eq!(
            past_used_nonces([0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]),
            [0, 0, 0, 2, 0, 0, 0, 0]
        );
        assert_eq!(past_used_nonces([0xff; 8]), [0; 8]);
    }
}
