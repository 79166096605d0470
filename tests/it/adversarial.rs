//! Attack resistance you can count: generated forged tokens against every endpoint that reads
//! one, and generated malformed requests against every public endpoint. Each suite counts what
//! it sent and fails listing every variant that got through.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use futures_util::stream::{self, StreamExt as _};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::oidc::{
    add_client, header, location, payload, query, rp, tokens_for, urlencode, ClientSpec, REDIRECT,
    SECRET,
};
use crate::on_both_backends;

const IN_FLIGHT: usize = 32;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn hs(alg: &str, key: &[u8], input: &str) -> Vec<u8> {
    match alg {
        "HS256" => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        "HS384" => {
            let mut m = Hmac::<sha2::Sha384>::new_from_slice(key).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(key).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// A DER length.
fn der_len(n: usize) -> Vec<u8> {
    if n < 128 {
        vec![n as u8]
    } else if n < 256 {
        vec![0x81, n as u8]
    } else {
        vec![0x82, (n >> 8) as u8, n as u8]
    }
}

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(body.len()));
    out.extend_from_slice(body);
    out
}

fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if b.first().is_some_and(|x| x & 0x80 != 0) {
        b.insert(0, 0);
    }
    der(0x02, &b)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// Everything an attacker could use as an HMAC secret: the published key in every encoding.
fn public_key_materials(jwks: &Value) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for k in jwks["keys"].as_array().unwrap() {
        let alg = k["alg"].as_str().unwrap();
        let s = |f: &str| k[f].as_str().unwrap_or_default().to_owned();
        out.push((format!("{alg}-jwk-json"), k.to_string().into_bytes()));
        match alg {
            "RS256" => {
                let (n, e) = (unb64(&s("n")), unb64(&s("e")));
                let pkcs1 = der(0x30, &[der_uint(&n), der_uint(&e)].concat());
                let algid = der(
                    0x30,
                    &[
                        der(
                            0x06,
                            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
                        ),
                        vec![0x05, 0x00],
                    ]
                    .concat(),
                );
                let spki = der(
                    0x30,
                    &[algid, der(0x03, &[&[0u8][..], &pkcs1].concat())].concat(),
                );
                out.push((format!("{alg}-n"), n.clone()));
                out.push((format!("{alg}-n-b64"), s("n").into_bytes()));
                out.push((format!("{alg}-e"), e));
                out.push((format!("{alg}-pkcs1-der"), pkcs1.clone()));
                out.push((format!("{alg}-spki-der"), spki.clone()));
                out.push((
                    format!("{alg}-spki-pem"),
                    pem("PUBLIC KEY", &spki).into_bytes(),
                ));
                out.push((
                    format!("{alg}-spki-pem-trimmed"),
                    pem("PUBLIC KEY", &spki).trim_end().as_bytes().to_vec(),
                ));
                out.push((
                    format!("{alg}-pkcs1-pem"),
                    pem("RSA PUBLIC KEY", &pkcs1).into_bytes(),
                ));
            }
            "ES256" => {
                let (x, y) = (unb64(&s("x")), unb64(&s("y")));
                let point = [&[4u8][..], &x, &y].concat();
                let mut spki = hex_bytes("3059301306072a8648ce3d020106082a8648ce3d030107034200");
                spki.extend(&point);
                out.push((format!("{alg}-x"), x));
                out.push((format!("{alg}-x-b64"), s("x").into_bytes()));
                out.push((format!("{alg}-y"), y));
                out.push((format!("{alg}-point"), point));
                out.push((format!("{alg}-spki-der"), spki.clone()));
                out.push((
                    format!("{alg}-spki-pem"),
                    pem("PUBLIC KEY", &spki).into_bytes(),
                ));
            }
            _ => {
                let x = unb64(&s("x"));
                let mut spki = hex_bytes("302a300506032b6570032100");
                spki.extend(&x);
                out.push((format!("{alg}-x"), x));
                out.push((format!("{alg}-x-b64"), s("x").into_bytes()));
                out.push((format!("{alg}-spki-der"), spki.clone()));
                out.push((
                    format!("{alg}-spki-pem"),
                    pem("PUBLIC KEY", &spki).into_bytes(),
                ));
            }
        }
    }
    out
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// A JWT taken apart.
#[derive(Clone)]
struct Jwt {
    header: Value,
    claims: Value,
    sig: Vec<u8>,
}

impl Jwt {
    fn parse(t: &str) -> Jwt {
        let sig = unb64(t.split('.').nth(2).unwrap());
        Jwt {
            header: header(t),
            claims: payload(t),
            sig,
        }
    }
    fn input(&self) -> String {
        format!(
            "{}.{}",
            b64(self.header.to_string().as_bytes()),
            b64(self.claims.to_string().as_bytes())
        )
    }
    fn with_sig(&self, sig: &[u8]) -> String {
        format!("{}.{}", self.input(), b64(sig))
    }
}

/// An attacker's own keys.
struct Attacker {
    ec: EcdsaKeyPair,
    rsa: RsaKeyPair,
    ec_jwk: Value,
    rsa_jwk: Value,
}

impl Attacker {
    fn new() -> Attacker {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
        let p = ec.public_key().as_ref().to_vec();
        let ec_jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..])});
        let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        // The public key is PKCS#1 DER: SEQUENCE { INTEGER n, INTEGER e }; enough for a header.
        let rsa_jwk = json!({"kty": "RSA", "n": b64(rsa.public_key().as_ref()), "e": "AQAB"});
        Attacker {
            ec,
            rsa,
            ec_jwk,
            rsa_jwk,
        }
    }
    fn es256(&self, input: &str) -> Vec<u8> {
        self.ec
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }
    fn rs256(&self, input: &str) -> Vec<u8> {
        let mut sig = vec![0; self.rsa.public_modulus_len()];
        self.rsa
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        sig
    }
}

/// Forged variants of one genuine token, by family.
fn forge(
    name: &str,
    modulus: &[u8],
    genuine: &str,
    materials: &[(String, Vec<u8>)],
    atk: &Attacker,
    other_kids: &[String],
    out: &mut Vec<(String, String, String)>,
) {
    let g = Jwt::parse(genuine);
    let mut push = |family: &str, variant: String, token: String| {
        out.push((family.to_owned(), format!("{name}/{variant}"), token));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    // Claim changes: each one re-encoded with the original signature, unsigned, and HS256-keyed
    // with the RSA modulus.
    let mut claim_changes: Vec<(String, Value)> = Vec::new();
    for (k, v) in [
        ("iss", json!("https://evil.example")),
        ("iss", json!("http://localhost")),
        ("aud", json!("other-client")),
        ("aud", json!(["rp", "other-client"])),
        ("sub", json!("admin")),
        ("sub", json!("00000000-0000-0000-0000-000000000000")),
        ("exp", json!(now - 3600)),
        ("exp", json!(now + 10 * 365 * 86400)),
        ("nbf", json!(now + 3600)),
        ("iat", json!(now + 3600)),
        ("scope", json!("openid profile email offline_access admin")),
        ("client_id", json!("other-client")),
        ("jti", json!("forged-jti")),
        ("acr", json!("phr")),
    ] {
        let mut c = g.clone();
        c.claims[k] = v.clone();
        claim_changes.push((format!("{k}={v}"), c.claims));
    }
    {
        let mut c = g.claims.clone();
        c.as_object_mut().unwrap().remove("exp");
        claim_changes.push(("exp-removed".into(), c));
    }
    // Same claims, different JSON encoding (whitespace, key order): the signature no longer fits.
    let pretty = serde_json::to_string_pretty(&g.claims).unwrap();
    for (label, claims) in &claim_changes {
        let mut j = g.clone();
        j.claims = claims.clone();
        push("claims+original-sig", label.clone(), j.with_sig(&g.sig));
        let mut n = j.clone();
        n.header = json!({"alg": "none", "typ": g.header["typ"]});
        push("claims+alg-none", label.clone(), format!("{}.", n.input()));
        let mut h = j.clone();
        h.header["alg"] = json!("HS256");
        let input = h.input();
        push(
            "claims+hs256-modulus",
            label.clone(),
            format!("{input}.{}", b64(&hs("HS256", modulus, &input))),
        );
    }
    let raw_payload = genuine.split('.').nth(1).unwrap();
    let raw_header = genuine.split('.').next().unwrap();
    let raw_sig = genuine.split('.').nth(2).unwrap();
    push(
        "re-encoded",
        "pretty-json".into(),
        format!("{raw_header}.{}.{raw_sig}", b64(pretty.as_bytes())),
    );
    push(
        "re-encoded",
        "padded-base64".into(),
        format!(
            "{raw_header}.{}.{raw_sig}",
            base64::engine::general_purpose::URL_SAFE.encode(g.claims.to_string())
        ),
    );
    push(
        "re-encoded",
        "standard-base64".into(),
        format!(
            "{raw_header}.{}.{raw_sig}",
            STANDARD.encode(serde_json::to_vec(&g.claims).unwrap())
        ),
    );

    // alg: none in its spellings, with and without a signature.
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        for keep_kid in [true, false] {
            let mut j = g.clone();
            j.header["alg"] = json!(alg);
            if !keep_kid {
                j.header.as_object_mut().unwrap().remove("kid");
            }
            push(
                "alg-none",
                format!("{alg:?} kid={keep_kid} empty-sig"),
                format!("{}.", j.input()),
            );
            push(
                "alg-none",
                format!("{alg:?} kid={keep_kid} no-sig-segment"),
                j.input(),
            );
            push(
                "alg-none",
                format!("{alg:?} kid={keep_kid} original-sig"),
                j.with_sig(&g.sig),
            );
        }
    }

    // HMAC keyed with the public key, in every encoding, with the real kid and without.
    for alg in ["HS256", "HS384", "HS512"] {
        for (m, key) in materials {
            for keep_kid in [true, false] {
                let mut j = g.clone();
                j.header["alg"] = json!(alg);
                if !keep_kid {
                    j.header.as_object_mut().unwrap().remove("kid");
                }
                let input = j.input();
                push(
                    "hmac-public-key",
                    format!("{alg} key={m} kid={keep_kid}"),
                    format!("{input}.{}", b64(&hs(alg, key, &input))),
                );
            }
        }
    }

    // The attacker's own key, announced in the header (jwk, jku, x5u) or under a known kid.
    let ec_pem_url = "https://evil.example/jwks.json";
    for (hdr_kind, kid) in [
        ("jwk", None),
        ("jwk", g.header["kid"].as_str().map(str::to_owned)),
        ("jku", None),
        ("jku", g.header["kid"].as_str().map(str::to_owned)),
        ("x5u", None),
        ("x5u", g.header["kid"].as_str().map(str::to_owned)),
        ("kid-only", g.header["kid"].as_str().map(str::to_owned)),
        ("kid-only", Some("attacker".into())),
        ("kid-only", Some("../../../../dev/null".into())),
        ("kid-only", Some("' OR '1'='1".into())),
        ("kid-only", Some(String::new())),
        ("no-kid", None),
    ] {
        for alg in ["ES256", "RS256"] {
            let mut j = g.clone();
            j.header = json!({"alg": alg, "typ": g.header["typ"]});
            if let Some(k) = &kid {
                j.header["kid"] = json!(k);
            }
            let jwk = if alg == "ES256" {
                &atk.ec_jwk
            } else {
                &atk.rsa_jwk
            };
            match hdr_kind {
                "jwk" => j.header["jwk"] = jwk.clone(),
                "jku" => j.header["jku"] = json!(ec_pem_url),
                "x5u" => j.header["x5u"] = json!("https://evil.example/cert.pem"),
                _ => {}
            }
            let input = j.input();
            let sig = if alg == "ES256" {
                atk.es256(&input)
            } else {
                atk.rs256(&input)
            };
            push(
                "attacker-key",
                format!("{hdr_kind} {alg} kid={kid:?}"),
                format!("{input}.{}", b64(&sig)),
            );
        }
    }

    // Unknown and retired kids, and other published kids with the original signature.
    for kid in other_kids {
        let mut j = g.clone();
        j.header["kid"] = json!(kid);
        push("other-kid", kid.clone(), j.with_sig(&g.sig));
    }
    for kid in ["unknown", "0", "null"] {
        let mut j = g.clone();
        j.header["kid"] = json!(kid);
        push("unknown-kid", kid.into(), j.with_sig(&g.sig));
    }
    {
        let mut j = g.clone();
        j.header["kid"] = json!(null);
        push("unknown-kid", "null-json".into(), j.with_sig(&g.sig));
        j.header["kid"] = json!(42);
        push("unknown-kid", "number".into(), j.with_sig(&g.sig));
    }
    // Header tricks with the original signature: crit, b64=false, typ changes, alg swaps.
    for (k, v) in [
        ("crit", json!(["b64"])),
        ("b64", json!(false)),
        ("typ", json!("JWT")),
        ("typ", json!("at+jwt")),
        ("typ", json!("logout+jwt")),
        ("typ", json!(null)),
        ("alg", json!("ES256")),
        ("alg", json!("EdDSA")),
        ("alg", json!("PS256")),
        ("alg", json!("RS512")),
        ("cty", json!("JWT")),
    ] {
        let mut j = g.clone();
        j.header[k] = v.clone();
        push("header-change", format!("{k}={v}"), j.with_sig(&g.sig));
    }

    // The signature: every byte position flipped (two ways), truncated, padded, emptied.
    for i in 0..g.sig.len() {
        for mask in [0x01u8, 0x80] {
            let mut s = g.sig.clone();
            s[i] ^= mask;
            push(
                "bit-flipped-sig",
                format!("byte {i} ^ {mask:#04x}"),
                format!("{raw_header}.{raw_payload}.{}", b64(&s)),
            );
        }
    }
    for len in [0, 1, 16, 32, 64, 128, g.sig.len() / 2, g.sig.len() - 1] {
        push(
            "truncated-sig",
            format!("{len} bytes"),
            format!(
                "{raw_header}.{raw_payload}.{}",
                b64(&g.sig[..len.min(g.sig.len())])
            ),
        );
    }
    for pad in [&[0u8][..], &[0, 0, 0, 0], &[0xff; 32], &g.sig[..]] {
        let s = [&g.sig[..], pad].concat();
        push(
            "padded-sig",
            format!("+{} bytes", pad.len()),
            format!("{raw_header}.{raw_payload}.{}", b64(&s)),
        );
        let s = [pad, &g.sig[..]].concat();
        push(
            "padded-sig",
            format!("{} bytes+", pad.len()),
            format!("{raw_header}.{raw_payload}.{}", b64(&s)),
        );
    }
    push(
        "zero-sig",
        "zeros".into(),
        g.with_sig(&vec![0; g.sig.len()]),
    );

    // Framing: whitespace, extra segments, non-base64 characters.
    for (label, t) in [
        ("extra-segment", format!("{genuine}.")),
        ("extra-segment-data", format!("{genuine}.{raw_sig}")),
        ("five-segments", format!("{genuine}.e30.e30")),
        ("two-segments", format!("{raw_header}.{raw_payload}")),
        ("one-segment", raw_payload.to_owned()),
        (
            "double-dot",
            format!("{raw_header}..{raw_payload}.{raw_sig}"),
        ),
        ("leading-dot", format!(".{genuine}")),
        (
            "space-inside",
            format!("{raw_header}. {raw_payload}.{raw_sig}"),
        ),
        (
            "tab-inside",
            format!("{raw_header}.\t{raw_payload}.{raw_sig}"),
        ),
        (
            "newline-inside",
            format!("{raw_header}.{raw_payload}\n.{raw_sig}"),
        ),
        (
            "plus-slash",
            format!(
                "{raw_header}.{raw_payload}.{}",
                raw_sig.replace('-', "+").replace('_', "/") + "+/"
            ),
        ),
        ("padding-eq", format!("{genuine}==")),
        ("star", format!("{raw_header}.{raw_payload}.*{raw_sig}")),
        ("percent", format!("{raw_header}.{raw_payload}.%{raw_sig}")),
        ("nul", format!("{raw_header}.{raw_payload}.{raw_sig}\0")),
        ("unicode", format!("{raw_header}.{raw_payload}.{raw_sig}é")),
        (
            "swapped-segments",
            format!("{raw_payload}.{raw_header}.{raw_sig}"),
        ),
        (
            "header-is-payload",
            format!("{raw_payload}.{raw_payload}.{raw_sig}"),
        ),
        ("lowercased", genuine.to_lowercase()),
        ("uppercased", genuine.to_uppercase()),
        ("reversed", genuine.chars().rev().collect()),
        ("empty", String::new()),
        (
            "json-header-not-b64",
            format!("{}.{raw_payload}.{raw_sig}", g.header),
        ),
    ] {
        push("framing", label.into(), t);
    }
}

/// The same token signed by vigil's own key but with claims vigil never issues: refused too.
async fn signed_by_vigil(
    app: &TestApp,
    name: &str,
    genuine: &str,
    out: &mut Vec<(String, String, String)>,
) {
    let g = Jwt::parse(genuine);
    let keys = app.svc.keys.current(app.svc.clock.now()).await.unwrap();
    let alg = g.header["alg"].as_str().unwrap().to_owned();
    let typ = g.header["typ"].as_str().unwrap().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (k, v) in [
        ("iss", json!("https://evil.example")),
        ("iss", json!(format!("{}/", app.base))),
        ("nbf", json!(now + 3600)),
        ("iat", json!(now + 3600)),
    ] {
        let mut c = g.claims.clone();
        c[k] = v.clone();
        out.push((
            "vigil-signed-bad-claims".into(),
            format!("{name}/{k}={v}"),
            keys.sign(&alg, &typ, &c).unwrap(),
        ));
    }
}

/// Which endpoints a token is tried at.
#[derive(Clone, Copy, PartialEq)]
enum Ask {
    /// All five.
    All,
    /// Where access tokens go (the genuine ID token: a valid hint).
    AccessOnly,
    /// Where ID tokens go (the genuine access token: /revoke would revoke it).
    HintOnly,
}

/// The endpoints that accepted `token`.
async fn refused_everywhere(app: &TestApp, token: &str, ask: Ask) -> Vec<&'static str> {
    let mut failed = Vec::new();
    if ask != Ask::HintOnly {
        access_endpoints(app, token, &mut failed).await;
    }
    if ask != Ask::AccessOnly {
        hint_endpoints(app, token, &mut failed).await;
    }
    failed
}

async fn access_endpoints(app: &TestApp, token: &str, failed: &mut Vec<&'static str>) {
    // /userinfo: 401 invalid_token (a header that cannot carry the value is refused by HTTP).
    if let Ok(v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")) {
        let r = app
            .http
            .get(app.url("/userinfo"))
            .header("authorization", v)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        // A value that is empty or not ASCII is no readable credential (RFC 6750 §3.1): 401
        // without an error code.
        let unreadable = token.trim().is_empty() || !token.is_ascii();
        if status != StatusCode::UNAUTHORIZED
            || !(body["error"] == "invalid_token" || (unreadable && body.is_null()))
        {
            failed.push("userinfo");
        }
    }
    // /introspect, by the token's own confidential client.
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if body != json!({"active": false}) {
        failed.push("introspect");
    }
    // /revoke answers 200 either way (RFC 7009 §2.2); the genuine token is checked at the end.
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    if r.status().is_server_error() {
        failed.push("revoke");
    }
}

async fn hint_endpoints(app: &TestApp, token: &str, failed: &mut Vec<&'static str>) {
    // /authorize with the token as id_token_hint: an error back to the client, never a code.
    let url = format!(
        "/authorize?response_type=code&client_id=rp&scope=openid&redirect_uri={}&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&id_token_hint={}",
        urlencode(REDIRECT),
        urlencode(token)
    );
    let r = app.get(&url).await;
    let loc = location(&r);
    let ok = loc.starts_with(REDIRECT) && {
        let q = query(&loc);
        q.get("error").map(String::as_str) == Some("invalid_request") && !q.contains_key("code")
    };
    if !ok {
        failed.push("authorize");
    }
    // /logout with the token as id_token_hint: refused (400, no redirect, session kept).
    {
        let r = app
            .get(&format!(
                "/logout?id_token_hint={}&post_logout_redirect_uri={}&state=x",
                urlencode(token),
                urlencode("https://rp.example.com/bye")
            ))
            .await;
        if r.status() != StatusCode::BAD_REQUEST || !location(&r).is_empty() {
            failed.push("logout");
        }
    }
}

async fn forged_tokens_are_refused(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &["openid", "email"]).await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    let idt = t["id_token"].as_str().unwrap().to_owned();
    let jwks: Value = app.get("/jwks").await.json().await.unwrap();
    let materials = public_key_materials(&jwks);
    let modulus = materials
        .iter()
        .find(|(m, _)| m == "RS256-n")
        .unwrap()
        .1
        .clone();
    // The other published kids (ES256, EdDSA) with the token's RS256 signature.
    let kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .filter(|k| Some(k.as_str()) != header(&at)["kid"].as_str())
        .collect();
    let atk = Attacker::new();

    let mut variants: Vec<(String, String, String)> = Vec::new();
    // Wrong typ: the genuine ID token where an access token goes, and the other way round.
    variants.push((
        "wrong-typ".into(),
        "id-token-as-access-token".into(),
        idt.clone(),
    ));
    forge(
        "access",
        &modulus,
        &at,
        &materials,
        &atk,
        &kids,
        &mut variants,
    );
    forge("id", &modulus, &idt, &materials, &atk, &kids, &mut variants);
    signed_by_vigil(&app, "access", &at, &mut variants).await;
    signed_by_vigil(&app, "id", &idt, &mut variants).await;
    let mut per_family: BTreeMap<String, usize> = BTreeMap::new();
    for (f, _, _) in &variants {
        *per_family.entry(f.clone()).or_default() += 1;
    }
    let n = variants.len();

    let app = Arc::new(app);
    let started = Instant::now();
    let failures: Vec<String> = stream::iter(variants.into_iter().map(|(family, name, token)| {
        let app = app.clone();
        async move {
            // The genuine ID token is a valid hint: it is only tried where access tokens go.
            let ask = if family == "wrong-typ" {
                Ask::AccessOnly
            } else {
                Ask::All
            };
            let failed = refused_everywhere(&app, &token, ask).await;
            (family, name, failed)
        }
    }))
    .buffer_unordered(IN_FLIGHT)
    .filter_map(|(family, name, failed)| async move {
        (!failed.is_empty()).then(|| format!("{family} {name}: accepted by {failed:?}"))
    })
    .collect()
    .await;
    // The genuine access token as id_token_hint, at /authorize and /logout.
    let mut failures = failures;
    let at_hint_failed = refused_everywhere(&app, &at, Ask::HintOnly).await;
    if !at_hint_failed.is_empty() {
        failures.push(format!(
            "wrong-typ access-token-as-id-token-hint: {at_hint_failed:?}"
        ));
    }

    let total = n + 1; // + the genuine access token as a hint
    eprintln!(
        "forged tokens ({b:?}): {total} variants × 5 endpoints, {} accepted, {:.1} s; per family: {per_family:?}",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} forged variants accepted:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total >= 1000, "only {total} variants");
    // Nothing revoked the real token and nothing ended the session.
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "the genuine access token still works: {body}"
    );
    assert_eq!(
        app.get("/account").await.status(),
        StatusCode::OK,
        "still signed in"
    );
}
on_both_backends!(forged_tokens_are_refused, super::forged_tokens_are_refused);
