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
    let now = jsonwebtoken::get_current_timestamp() as i64;

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
    let now = jsonwebtoken::get_current_timestamp() as i64;
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

/// A key past its grace period signs nothing: an ID token minted with a retired key, with fresh
/// times, is refused as `id_token_hint` at `/authorize` and `/logout` and as a bearer token,
/// while the same claims signed with the current key are accepted (the control).
async fn retired_keys_sign_nothing(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &["openid"]).await;
    let idt = Jwt::parse(t["id_token"].as_str().unwrap());
    let at = Jwt::parse(t["access_token"].as_str().unwrap());
    let retired = app.svc.keys.current(app.svc.clock.now()).await.unwrap();
    {
        let mut conn = app.svc.db.get().unwrap();
        app.svc
            .keys
            .rotate(&mut conn, app.svc.clock.now(), vigil::oidc::KEY_GRACE_SECS)
            .unwrap();
    }
    app.clock.advance_secs(vigil::oidc::KEY_GRACE_SECS + 30);
    app.svc.keys.invalidate();
    let jwks: Value = app.get("/jwks").await.json().await.unwrap();
    let old_kid = idt.header["kid"].clone();
    assert!(
        !jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == old_kid),
        "the old key has left the JWKS"
    );
    let current = app.svc.keys.current(app.svc.clock.now()).await.unwrap();
    let now = app.svc.clock.now().secs();
    let fresh = |j: &Jwt| {
        let mut c = j.claims.clone();
        c["iat"] = json!(now);
        c["exp"] = json!(now + 300);
        if c.get("auth_time").is_some() {
            c["auth_time"] = json!(now);
        }
        c
    };
    let alg = idt.header["alg"].as_str().unwrap().to_owned();
    let typ = idt.header["typ"].as_str().unwrap().to_owned();
    let id_claims = fresh(&idt);

    let control = current.sign(&alg, &typ, &id_claims).unwrap();
    let mut none = Vec::new();
    hint_endpoints(&app, &control, &mut none).await;
    assert_eq!(
        none,
        vec!["authorize", "logout"],
        "control: the current key's hint is taken at both endpoints"
    );

    let mut failures = Vec::new();
    let by_retired = retired.sign(&alg, &typ, &id_claims).unwrap();
    assert_eq!(Jwt::parse(&by_retired).header["kid"], old_kid);
    let failed = refused_everywhere(&app, &by_retired, Ask::HintOnly).await;
    if !failed.is_empty() {
        failures.push(format!("retired-kid id token: {failed:?}"));
    }
    let at_alg = at.header["alg"].as_str().unwrap().to_owned();
    let at_typ = at.header["typ"].as_str().unwrap().to_owned();
    let access = retired.sign(&at_alg, &at_typ, &fresh(&at)).unwrap();
    let failed = refused_everywhere(&app, &access, Ask::AccessOnly).await;
    if !failed.is_empty() {
        failures.push(format!("retired-kid access token: {failed:?}"));
    }
    assert!(failures.is_empty(), "{failures:?}");
}
on_both_backends!(retired_keys_sign_nothing, super::retired_keys_sign_nothing);

// ---------------------------------------------------------------------------------------------
// Malformed input.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// Requests per endpoint, on each backend (the same seeded streams).
const MALFORMED_PER_ENDPOINT: usize = 10_000;
const SLOW: std::time::Duration = std::time::Duration::from_secs(1);
/// Where a redirect from /authorize or /logout may go: a registered URI or vigil itself.
const REGISTERED: &[&str] = &[
    REDIRECT,
    "https://rp.example.com/cb?x=1",
    "https://rp.example.com/bye",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Endpoint {
    Authorize,
    Token,
    Introspect,
    Revoke,
    Userinfo,
    Login,
    Logout,
}

const ENDPOINTS: &[Endpoint] = &[
    Endpoint::Authorize,
    Endpoint::Token,
    Endpoint::Introspect,
    Endpoint::Revoke,
    Endpoint::Userinfo,
    Endpoint::Login,
    Endpoint::Logout,
];

struct Req {
    post: bool,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

/// A well-formed value for a parameter, so that some requests get past the first checks.
fn good(name: &str, csrf: &str, genuine: &str) -> String {
    match name {
        "response_type" => "code".into(),
        "client_id" => "rp".into(),
        "redirect_uri" => REDIRECT.into(),
        "post_logout_redirect_uri" => "https://rp.example.com/bye".into(),
        "scope" => "openid email".into(),
        "code_challenge" => "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        "code_challenge_method" => "S256".into(),
        "grant_type" => "authorization_code".into(),
        "client_secret" => SECRET.into(),
        "csrf_token" => csrf.into(),
        "username" => "alice".into(),
        "password" => "wrong password".into(),
        "prompt" => "none".into(),
        "max_age" => "0".into(),
        "response_mode" => "form_post".into(),
        "token" | "id_token_hint" | "refresh_token" => genuine.into(),
        _ => "x".into(),
    }
}

/// One value, already in its wire form (percent-encoded where it has to be, raw where the point
/// is to be malformed).
fn value(rng: &mut StdRng, name: &str, csrf: &str, genuine: &str) -> String {
    match rng.gen_range(0..20) {
        0..=7 => urlencode(&good(name, csrf, genuine)),
        8 => String::new(),
        9 => "%ff%fe".into(),
        10 => [
            "%",
            "%z",
            "%zz",
            "%%",
            "%0",
            "%C0%80",
            "%ED%A0%80",
            "%F4%90%80%80",
        ][rng.gen_range(0..8)]
        .into(),
        11 => (0..rng.gen_range(1..8))
            .map(|_| format!("%{:02x}", rng.gen_range(0u8..0x20)))
            .collect::<String>(),
        12 => "%0d%0aLocation:%20https://evil.example%0d%0a".into(),
        13 => {
            // Oversized: mostly a few KiB, sometimes up to ~100 KiB.
            let len = if rng.gen_bool(0.15) {
                rng.gen_range(16 * 1024..100 * 1024)
            } else {
                rng.gen_range(256..4096)
            };
            "a".repeat(len)
        }
        14 => urlencode(
            [
                "é☃𝄞",
                "\u{202e}",
                "\u{feff}",
                "null",
                "[]",
                "{}",
                "-1",
                "99999999999999999999",
            ][rng.gen_range(0..8)],
        ),
        15 => urlencode(
            [
                "https://evil.example",
                "//evil.example",
                "javascript:alert(1)",
                "https://rp.example.com/callback/../evil",
                "https://rp.example.com/callback?x=1",
                "https://rp.example.com/bye#frag",
                "https://rp.example.com.evil.example/callback",
                "/account",
            ][rng.gen_range(0..8)],
        ),
        16 => urlencode("\"'<script>alert(1)</script>\\"),
        17 => (0..rng.gen_range(1..64))
            .map(|_| rng.gen_range(0x21u8..0x7f) as char)
            .filter(|c| c.is_ascii_alphanumeric() || "-._~".contains(*c))
            .collect(),
        18 => urlencode(&good(name, csrf, genuine)).repeat(rng.gen_range(2..5)),
        _ => format!("{}%20", urlencode(&good(name, csrf, genuine))),
    }
}

fn params_of(e: Endpoint) -> &'static [&'static str] {
    match e {
        Endpoint::Authorize => &[
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "nonce",
            "code_challenge",
            "code_challenge_method",
            "prompt",
            "max_age",
            "response_mode",
            "login_hint",
            "id_token_hint",
            "acr_values",
            "ui_locales",
            "request",
            "request_uri",
        ],
        Endpoint::Token => &[
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "refresh_token",
            "client_id",
            "client_secret",
            "scope",
        ],
        Endpoint::Introspect | Endpoint::Revoke => {
            &["token", "token_type_hint", "client_id", "client_secret"]
        }
        Endpoint::Userinfo => &["access_token"],
        Endpoint::Login => &["username", "password", "csrf_token", "tx"],
        Endpoint::Logout => &[
            "id_token_hint",
            "client_id",
            "post_logout_redirect_uri",
            "state",
            "ui_locales",
        ],
    }
}

/// `a=b&c=d…`: parameters missing, repeated, unknown, or with malformed values.
fn encoded_params(rng: &mut StdRng, e: Endpoint, csrf: &str, genuine: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for name in params_of(e) {
        if rng.gen_bool(0.25) {
            continue; // missing
        }
        let times = if rng.gen_bool(0.08) {
            rng.gen_range(2..4)
        } else {
            1
        };
        for _ in 0..times {
            parts.push(format!("{name}={}", value(rng, name, csrf, genuine)));
        }
    }
    match rng.gen_range(0..30) {
        0 => parts.push("unknown=%ff".into()),
        1 => parts.push("&&==&".into()),
        2 => parts.push("novalue".into()),
        3 => parts.push(format!("{}=1", "k".repeat(rng.gen_range(1..4096)))),
        4 => parts.push("a[b]=c&a[]=d".into()),
        _ => {}
    }
    if rng.gen_bool(0.3) {
        // Shuffle: order must not matter.
        for i in (1..parts.len()).rev() {
            parts.swap(i, rng.gen_range(0..=i));
        }
    }
    parts.join("&")
}

fn generate(rng: &mut StdRng, e: Endpoint, csrf: &str, genuine: &str) -> Req {
    let params = encoded_params(rng, e, csrf, genuine);
    let path = match e {
        Endpoint::Authorize => "/authorize",
        Endpoint::Token => "/token",
        Endpoint::Introspect => "/introspect",
        Endpoint::Revoke => "/revoke",
        Endpoint::Userinfo => "/userinfo",
        Endpoint::Login => "/login",
        Endpoint::Logout => "/logout",
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    let body_endpoint = matches!(
        e,
        Endpoint::Token | Endpoint::Introspect | Endpoint::Revoke | Endpoint::Login
    );
    // Client authentication, good or bad, for the endpoints that take it.
    if matches!(e, Endpoint::Token | Endpoint::Introspect | Endpoint::Revoke) {
        match rng.gen_range(0..6) {
            0 | 1 => headers.push((
                "authorization".into(),
                format!("Basic {}", STANDARD.encode(format!("rp:{SECRET}"))),
            )),
            2 => headers.push(("authorization".into(), "Basic %%%".into())),
            3 => headers.push((
                "authorization".into(),
                format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', 0x00])),
            )),
            4 => headers.push((
                "authorization".into(),
                format!("Basic {}", STANDARD.encode("r%00p:x")),
            )),
            _ => {}
        }
    }
    if e == Endpoint::Userinfo {
        let v = match rng.gen_range(0..10) {
            0 => format!("Bearer {genuine}"),
            1 => "Bearer".into(),
            2 => "Bearer ".into(),
            3 => format!("bearer {}", "a".repeat(rng.gen_range(1..16 * 1024))),
            4 => format!("Basic {}", STANDARD.encode("rp:x")),
            5 => format!("Bearer {genuine} {genuine}"),
            6 => format!("Bearer \t{}", genuine.replace('.', "\t.")),
            7 => format!("Bearer {}", value(rng, "token", "", genuine)),
            8 => "DPoP abc".into(),
            _ => String::new(),
        };
        if !v.is_empty() {
            headers.push(("authorization".into(), v.clone()));
            if rng.gen_bool(0.1) {
                headers.push(("authorization".into(), v));
            }
        }
    }
    let post = body_endpoint
        || (matches!(
            e,
            Endpoint::Userinfo | Endpoint::Logout | Endpoint::Authorize
        ) && rng.gen_bool(0.2));
    if !post {
        // http::Uri holds at most 64 KiB: the longest query a client can send at all.
        let mut params = params;
        params.truncate(60 * 1024);
        return Req {
            post,
            path: format!("{path}?{params}"),
            headers,
            body: None,
        };
    }
    let (ct, body): (Option<&str>, Vec<u8>) = match rng.gen_range(0..20) {
        0..=12 => (
            Some("application/x-www-form-urlencoded"),
            params.into_bytes(),
        ),
        13 => {
            let obj: serde_json::Map<String, Value> = params
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), json!(v)))
                .collect();
            (
                Some("application/json"),
                Value::Object(obj).to_string().into_bytes(),
            )
        }
        14 => (Some("text/plain"), params.into_bytes()),
        15 => (None, params.into_bytes()),
        16 => (
            Some("multipart/form-data; boundary=x"),
            b"--x\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nabc\r\n--x--".to_vec(),
        ),
        17 => (
            Some("application/x-www-form-urlencoded; charset=utf-16"),
            [&[0xffu8, 0xfe][..], params.as_bytes()].concat(),
        ),
        18 => {
            // Huge: past every body limit.
            let len = rng.gen_range(16 * 1024..160 * 1024);
            (
                Some("application/x-www-form-urlencoded"),
                format!("token={}", "A".repeat(len)).into_bytes(),
            )
        }
        _ => (
            Some("application/x-www-form-urlencoded"),
            (0..rng.gen_range(1..512)).map(|_| rng.gen()).collect(),
        ),
    };
    if let Some(ct) = ct {
        headers.push(("content-type".into(), ct.into()));
    }
    Req {
        post,
        path: path.into(),
        headers,
        body: Some(body),
    }
}

#[derive(Default)]
struct Tally {
    sent: usize,
    by_status: BTreeMap<u16, usize>,
    max_latency: std::time::Duration,
    failures: Vec<String>,
}

async fn send(app: &TestApp, e: Endpoint, r: Req) -> (u16, std::time::Duration, Option<String>) {
    let url = app.url(&r.path);
    let mut b = if r.post {
        app.http.post(&url)
    } else {
        app.http.get(&url)
    };
    for (k, v) in &r.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    if let Some(body) = r.body {
        b = b.body(body);
    }
    let started = Instant::now();
    let resp = b.send().await;
    let took = started.elapsed();
    let short = |s: &str| s.chars().take(160).collect::<String>();
    let resp = match resp {
        Ok(r) => r,
        Err(err) => {
            return (
                0,
                took,
                Some(format!("{e:?} {}: no answer: {err}", short(&r.path))),
            )
        }
    };
    let status = resp.status().as_u16();
    let loc = location(&resp);
    let _ = resp.bytes().await;
    let took = started.elapsed();
    let mut problem = None;
    if status >= 500 {
        problem = Some(format!("{e:?} {}: status {status}", short(&r.path)));
    } else if took > SLOW {
        problem = Some(format!("{e:?} {}: {took:?}", short(&r.path)));
    } else if !loc.is_empty() {
        let ours = loc.starts_with('/') && !loc.starts_with("//") && !loc.starts_with("/\\");
        if !ours && !REGISTERED.iter().any(|u| loc.starts_with(u)) {
            problem = Some(format!(
                "{e:?} {}: redirect to {}",
                short(&r.path),
                short(&loc)
            ));
        }
    }
    (status, took, problem)
}

async fn malformed_requests_never_break_the_server(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let csrf = app.csrf_from("/login").await;
    let rp = rp(&app, "rp", false).await;
    let (t, _) = tokens_for(&app, &rp, &["openid"]).await;
    let genuine = t["access_token"].as_str().unwrap().to_owned();
    let app = Arc::new(app);
    let per_endpoint = MALFORMED_PER_ENDPOINT;
    let started = Instant::now();
    let mut tallies: BTreeMap<Endpoint, Tally> = BTreeMap::new();
    for (i, e) in ENDPOINTS.iter().enumerate() {
        // One deterministic stream per endpoint: a failure replays with the same seed.
        let mut rng = StdRng::seed_from_u64(0x5eed_0000 + i as u64);
        let reqs: Vec<Req> = (0..per_endpoint)
            .map(|_| generate(&mut rng, *e, &csrf, &genuine))
            .collect();
        let results: Vec<_> = stream::iter(reqs.into_iter().map(|r| {
            let app = app.clone();
            let e = *e;
            async move { send(&app, e, r).await }
        }))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
        let tally = tallies.entry(*e).or_default();
        for (status, took, problem) in results {
            tally.sent += 1;
            *tally.by_status.entry(status).or_default() += 1;
            tally.max_latency = tally.max_latency.max(took);
            tally.failures.extend(problem);
        }
        // Still answering after the endpoint's whole stream.
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    }
    let mut failures = Vec::new();
    let mut total = 0;
    let mut max_latency = std::time::Duration::ZERO;
    for (e, t) in &tallies {
        eprintln!(
            "malformed ({b:?}) {e:?}: {} requests, max {:?}, statuses {:?}",
            t.sent, t.max_latency, t.by_status
        );
        total += t.sent;
        max_latency = max_latency.max(t.max_latency);
        failures.extend(t.failures.iter().cloned());
        assert!(t.sent >= per_endpoint);
    }
    eprintln!(
        "malformed ({b:?}): {total} requests in {:.1} s, {} failures (5xx, >1 s, no answer, foreign redirect), max latency {max_latency:?}",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    failures.sort();
    failures.dedup_by_key(|f| f.chars().take(12).collect::<String>());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
on_both_backends!(
    malformed_requests_never_break_the_server,
    super::malformed_requests_never_break_the_server
);

/// RFC 6749 §5.2: `error_description` keeps to %x20-21 / %x23-5B / %x5D-7E.
fn description_ok(d: &str) -> bool {
    d.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

async fn repeated_parameters_and_error_descriptions(b: Backend) {
    let app = spawn_app(b).await.unwrap();
    app.add_user("alice", false).await;
    add_client(&app, ClientSpec::default()).await;
    let basic = format!("Basic {}", STANDARD.encode(format!("rp:{SECRET}")));

    // /token: a repeated parameter is invalid_request (RFC 6749 §3.1), whichever it is.
    for body in [
        "grant_type=authorization_code&grant_type=refresh_token&code=x",
        "grant_type=refresh_token&refresh_token=a&refresh_token=b",
        "grant_type=authorization_code&code=a&code=a&redirect_uri=x",
        "grant_type=client_credentials&scope=openid&scope=email",
    ] {
        let r = app
            .http
            .post(app.url("/token"))
            .header("authorization", &basic)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "{body}: {v}");
    }
    // /authorize: repeated redirect_uri is a page (the redirect cannot be trusted); any other
    // repeated parameter goes back to the client as invalid_request.
    let base = format!(
        "/authorize?response_type=code&client_id=rp&redirect_uri={}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        urlencode(REDIRECT)
    );
    for extra in [
        "&scope=openid&scope=email",
        "&scope=openid&state=a&state=b",
        "&scope=openid&response_type=code",
        "&scope=openid&nonce=1&nonce=1",
    ] {
        let r = app.get(&format!("{base}{extra}")).await;
        let loc = location(&r);
        assert!(loc.starts_with(REDIRECT), "{extra}: {} {loc}", r.status());
        assert_eq!(query(&loc)["error"], "invalid_request", "{extra}");
        assert!(!query(&loc).contains_key("code"));
    }
    for q in [
        format!(
            "{base}&redirect_uri={}",
            urlencode("https://rp.example.com/cb?x=1")
        ),
        format!("{base}&client_id=rp"),
    ] {
        let r = app.get(&q).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
        assert!(location(&r).is_empty(), "{q}");
    }

    // Error descriptions never echo characters outside the RFC's set.
    let mut rng = StdRng::seed_from_u64(6749);
    let mut checked = 0;
    for i in 0..200 {
        let junk: String = if i == 0 {
            "\"quoted\"\\back\r\nslash\u{7f}é".into()
        } else {
            (0..rng.gen_range(1..24))
                .map(|_| char::from_u32(rng.gen_range(0..0x300)).unwrap_or('?'))
                .collect()
        };
        for (path, field) in [
            ("/token", "grant_type"),
            ("/token", "code"),
            ("/introspect", "token_type_hint"),
            ("/revoke", "token_type_hint"),
        ] {
            let mut form = vec![(field, junk.as_str())];
            if path == "/token" && field == "code" {
                form.push(("grant_type", "authorization_code"));
            } else if path != "/token" {
                form.push(("token", "x"));
            }
            let r = app
                .http
                .post(app.url(path))
                .header("authorization", &basic)
                .form(&form)
                .send()
                .await
                .unwrap();
            let text = r.text().await.unwrap();
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                if let Some(d) = v["error_description"].as_str() {
                    assert!(description_ok(d), "{path} {field}={junk:?}: {d:?}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 200, "only {checked} descriptions seen");
}
on_both_backends!(
    repeated_parameters_and_error_descriptions,
    super::repeated_parameters_and_error_descriptions
);
