//! Device management: Read, Write, Execute, Create, Delete and Discover on the object
//! tree, with the response codes of the Core TS (§6.3, §8.2.4).

use std::collections::BTreeMap;

use coap_lite::{RequestType, ResponseType};

use super::attributes::{AttributeStore, AttributeUpdate};
use crate::codec::link::Link;
use crate::codec::{self, CodecError, ContentFormat, Record};
use crate::model::{Action, DmError, Object, ResourceDef};
use crate::path::Path;
use crate::value::{ResourceType, ResourceValue};

pub type Objects = BTreeMap<u16, Box<dyn Object>>;

/// A DM request, already taken apart from its CoAP message.
pub struct DmRequest<'a> {
    /// Short Server ID of the server asking.
    pub server: u16,
    pub method: RequestType,
    pub path: Path,
    pub queries: &'a [String],
    pub accept: Option<u16>,
    pub content_format: Option<u16>,
    pub payload: &'a [u8],
}

#[derive(Debug, PartialEq)]
pub struct DmResponse {
    pub code: ResponseType,
    pub content_format: Option<u16>,
    pub payload: Vec<u8>,
    /// Location-Path of a created instance.
    pub location: Option<Path>,
}

impl DmResponse {
    fn empty(code: ResponseType) -> DmResponse {
        DmResponse {
            code,
            content_format: None,
            payload: Vec::new(),
            location: None,
        }
    }

    fn content(format: ContentFormat, payload: Vec<u8>) -> DmResponse {
        DmResponse {
            code: ResponseType::Content,
            content_format: Some(format.code()),
            payload,
            location: None,
        }
    }
}

impl From<DmError> for DmResponse {
    fn from(e: DmError) -> DmResponse {
        DmResponse::empty(error_code(&e))
    }
}

pub fn error_code(e: &DmError) -> ResponseType {
    match e {
        DmError::BadRequest(_) => ResponseType::BadRequest,
        DmError::Unauthorized => ResponseType::Unauthorized,
        DmError::NotFound => ResponseType::NotFound,
        DmError::MethodNotAllowed => ResponseType::MethodNotAllowed,
        DmError::NotAcceptable => ResponseType::NotAcceptable,
        DmError::UnsupportedContentFormat => ResponseType::UnsupportedContentFormat,
        DmError::Internal(_) => ResponseType::InternalServerError,
        DmError::TooLarge { .. } => ResponseType::RequestEntityTooLarge,
        DmError::Incomplete => ResponseType::RequestEntityIncomplete,
        DmError::Unavailable(_) => ResponseType::ServiceUnavailable,
    }
}

fn codec_error(e: CodecError) -> DmError {
    match e {
        CodecError::UnknownPath(p) => DmError::BadRequest(format!("unknown resource {p}")),
        CodecError::Unrepresentable => DmError::NotAcceptable,
        CodecError::Unsupported(_) => DmError::UnsupportedContentFormat,
        other => DmError::BadRequest(other.to_string()),
    }
}

/// Handles one DM request. Actions the objects produce are appended to `actions`.
pub fn dispatch(
    objects: &mut Objects,
    attributes: &mut AttributeStore,
    req: &DmRequest<'_>,
    preferred: ContentFormat,
    actions: &mut Vec<Action>,
) -> DmResponse {
    let result = match req.method {
        RequestType::Get if req.accept == Some(ContentFormat::LinkFormat.code()) => {
            discover(objects, attributes, req)
        }
        RequestType::Get => read(objects, req, preferred),
        RequestType::Put
            if req.content_format.is_none()
                && req.payload.is_empty()
                && !req.queries.is_empty() =>
        {
            write_attributes(objects, attributes, req)
        }
        RequestType::Put => write(objects, req, true, actions),
        RequestType::Post => match req.path.len() {
            1 => create(objects, req, actions),
            2 => write(objects, req, false, actions),
            3 if resource_def(objects, &req.path).is_ok_and(|d| d.operations.executable()) => {
                execute(objects, req, actions)
            }
            3 => write(objects, req, false, actions),
            _ => Err(DmError::MethodNotAllowed),
        },
        RequestType::Delete => delete(objects, req),
        RequestType::Fetch if req.path.is_root() => read_composite(objects, req),
        RequestType::IPatch if req.path.is_root() => write_composite(objects, req, actions),
        _ => Err(DmError::MethodNotAllowed),
    };
    result.unwrap_or_else(|e| {
        tracing::debug!(method = ?req.method, path = %req.path, "refused: {e}");
        e.into()
    })
}

/// Write-Attributes (`PUT /o/i/r?pmin=10&pmax=60`): notification attributes of the
/// requesting server at one level of the tree.
fn write_attributes(
    objects: &Objects,
    attributes: &mut AttributeStore,
    req: &DmRequest<'_>,
) -> Result<DmResponse, DmError> {
    let path = req.path;
    let obj = object(objects, &path)?;
    check_instance(obj, &path)?;
    let update = AttributeUpdate::parse(req.queries)?;
    if path.len() >= 3 {
        let def = resource_def(objects, &path)?;
        if def.operations.executable() {
            return Err(DmError::MethodNotAllowed);
        }
        let numeric = matches!(
            def.ty,
            ResourceType::Integer
                | ResourceType::Unsigned
                | ResourceType::Float
                | ResourceType::Time
        );
        if update.has_edge() && def.ty != ResourceType::Boolean {
            return Err(DmError::BadRequest(format!(
                "edge needs a boolean resource; {path} is not"
            )));
        }
        if update.has_thresholds() && !numeric {
            return Err(DmError::BadRequest(format!(
                "gt, lt and st need a numeric resource; {path} is not"
            )));
        }
    } else if update.has_thresholds() || update.has_edge() {
        return Err(DmError::BadRequest(
            "gt, lt and st apply to a resource, not to an object or instance".into(),
        ));
    }
    let current = attributes
        .get(req.server, &path)
        .cloned()
        .unwrap_or_default();
    let new = update.apply(&current)?;
    attributes.set(req.server, path, new);
    Ok(DmResponse::empty(ResponseType::Changed))
}

fn object<'a>(objects: &'a Objects, path: &Path) -> Result<&'a dyn Object, DmError> {
    match path.object_id() {
        // The Security object holds credentials: only the bootstrap server may touch it.
        Some(0) => Err(DmError::Unauthorized),
        Some(id) => objects
            .get(&id)
            .map(|o| o.as_ref())
            .ok_or(DmError::NotFound),
        None => Err(DmError::MethodNotAllowed),
    }
}

fn object_mut<'a>(
    objects: &'a mut Objects,
    path: &Path,
) -> Result<&'a mut Box<dyn Object>, DmError> {
    object(objects, path)?;
    path.object_id()
        .and_then(|id| objects.get_mut(&id))
        .ok_or(DmError::NotFound)
}

fn resource_def(objects: &Objects, path: &Path) -> Result<&'static ResourceDef, DmError> {
    let obj = object(objects, path)?;
    let r = path.resource_id().ok_or(DmError::MethodNotAllowed)?;
    obj.def().resource(r).ok_or(DmError::NotFound)
}

fn check_instance(obj: &dyn Object, path: &Path) -> Result<(), DmError> {
    match path.instance_id() {
        Some(i) if obj.instances().contains(&i) => Ok(()),
        Some(_) => Err(DmError::NotFound),
        None => Ok(()),
    }
}

fn push_records(records: &mut Vec<Record>, path: Path, value: ResourceValue) {
    match value {
        ResourceValue::Single(value) => records.push(Record { path, value }),
        ResourceValue::Multiple(map) => {
            records.extend(map.into_iter().filter_map(|(ri, value)| {
                Some(Record {
                    path: path.child(ri)?,
                    value,
                })
            }));
        }
    }
}

/// The readable values under `path`, sorted.
pub fn collect(objects: &Objects, path: &Path) -> Result<Vec<Record>, DmError> {
    let obj = object(objects, path)?;
    check_instance(obj, path)?;
    let (Some(o), def) = (path.object_id(), obj.def()) else {
        return Err(DmError::MethodNotAllowed);
    };
    let mut records = Vec::new();
    match (path.instance_id(), path.resource_id()) {
        (None, _) | (Some(_), None) => {
            let instances = path
                .instance_id()
                .map_or_else(|| obj.instances(), |i| vec![i]);
            for i in instances {
                for r in def.resources.iter().filter(|r| r.operations.readable()) {
                    if let Some(v) = obj.read(i, r.id) {
                        push_records(&mut records, Path::resource(o, i, r.id), v);
                    }
                }
            }
        }
        (Some(i), Some(r)) => {
            let rdef = def.resource(r).ok_or(DmError::NotFound)?;
            if !rdef.operations.readable() {
                return Err(DmError::MethodNotAllowed);
            }
            let value = obj.read(i, r).ok_or(DmError::NotFound)?;
            match (path.resource_instance_id(), value) {
                (None, v) => push_records(&mut records, Path::resource(o, i, r), v),
                (Some(ri), ResourceValue::Multiple(map)) => {
                    let v = map.get(&ri).ok_or(DmError::NotFound)?;
                    records.push(Record {
                        path: *path,
                        value: v.clone(),
                    });
                }
                (Some(_), ResourceValue::Single(_)) => return Err(DmError::NotFound),
            }
        }
    }
    Ok(records)
}

fn read(
    objects: &Objects,
    req: &DmRequest<'_>,
    preferred: ContentFormat,
) -> Result<DmResponse, DmError> {
    let records = collect(objects, &req.path)?;
    let format = match req.accept {
        Some(code) => ContentFormat::from_code(code).ok_or(DmError::NotAcceptable)?,
        None => default_format(objects, &req.path, preferred)?,
    };
    let payload = codec::encode(format, &req.path, &records).map_err(codec_error)?;
    Ok(DmResponse::content(format, payload))
}

/// LwM2M 1.1 §7.1: a single value goes as plain text (opaque ones as opaque), anything
/// with several values in the preferred hierarchical format.
fn default_format(
    objects: &Objects,
    path: &Path,
    preferred: ContentFormat,
) -> Result<ContentFormat, DmError> {
    if path.len() < 3 {
        return Ok(preferred);
    }
    let def = resource_def(objects, path)?;
    Ok(match (def.multiple && path.len() == 3, def.ty) {
        (true, _) => preferred,
        (false, ResourceType::Opaque) => ContentFormat::Opaque,
        (false, _) => ContentFormat::Text,
    })
}

/// Decodes a Write or Create payload under `base`.
fn decode(objects: &Objects, req: &DmRequest<'_>, base: &Path) -> Result<Vec<Record>, DmError> {
    let code = req
        .content_format
        .ok_or(DmError::UnsupportedContentFormat)?;
    let format = ContentFormat::from_code(code).ok_or(DmError::UnsupportedContentFormat)?;
    if format == ContentFormat::LinkFormat {
        return Err(DmError::UnsupportedContentFormat);
    }
    let obj = object(objects, base)?;
    let def = obj.def();
    let ty = |p: &Path| -> Option<ResourceType> { def.resource(p.resource_id()?).map(|r| r.ty) };
    codec::decode(format, base, req.payload, &ty).map_err(codec_error)
}

/// Groups decoded records by resource, checking each against the model.
fn group(
    obj: &dyn Object,
    records: Vec<Record>,
    may_write: impl Fn(&ResourceDef) -> bool,
) -> Result<BTreeMap<(u16, u16), ResourceValue>, DmError> {
    let def = obj.def();
    let mut out: BTreeMap<(u16, u16), ResourceValue> = BTreeMap::new();
    for rec in records {
        let (Some(i), Some(r)) = (rec.path.instance_id(), rec.path.resource_id()) else {
            return Err(DmError::BadRequest(format!(
                "{} is not a resource",
                rec.path
            )));
        };
        let rdef = def.resource(r).ok_or(DmError::NotFound)?;
        if !may_write(rdef) {
            return Err(DmError::MethodNotAllowed);
        }
        match (rdef.multiple, rec.path.resource_instance_id()) {
            (false, None) => {
                out.insert((i, r), ResourceValue::Single(rec.value));
            }
            (true, Some(ri)) => {
                let entry = out
                    .entry((i, r))
                    .or_insert_with(|| ResourceValue::Multiple(BTreeMap::new()));
                if let ResourceValue::Multiple(map) = entry {
                    map.insert(ri, rec.value);
                }
            }
            (false, Some(_)) => {
                return Err(DmError::BadRequest(format!(
                    "{} is a single-instance resource",
                    Path::resource(def.id, i, r)
                )))
            }
            (true, None) => {
                return Err(DmError::BadRequest(format!(
                    "{} is a multiple-instance resource",
                    Path::resource(def.id, i, r)
                )))
            }
        }
    }
    Ok(out)
}

fn write(
    objects: &mut Objects,
    req: &DmRequest<'_>,
    replace: bool,
    actions: &mut Vec<Action>,
) -> Result<DmResponse, DmError> {
    let path = req.path;
    if path.len() < 2 {
        return Err(DmError::MethodNotAllowed);
    }
    let obj = object(objects, &path)?;
    check_instance(obj, &path)?;
    if path.len() >= 3 {
        let rdef = resource_def(objects, &path)?;
        if !rdef.operations.writable() {
            return Err(DmError::MethodNotAllowed);
        }
        if path.len() == 4 && !rdef.multiple {
            return Err(DmError::NotFound);
        }
    }
    let records = decode(objects, req, &path)?;
    let mut values = group(obj, records, |d| d.operations.writable())?;
    // Partial updates of multiple resources, and writes of one resource instance, merge
    // into what is there; a replace of a multiple resource or instance sets it whole.
    if !replace || path.len() == 4 {
        merge_multiple(obj, &mut values);
    }
    let obj = object_mut(objects, &path)?;
    for ((i, r), value) in values {
        actions.extend(obj.write(i, r, value, true)?);
    }
    Ok(DmResponse::empty(ResponseType::Changed))
}

/// The formats composite operations use (Core TS 1.1 §6.3.5, §6.3.6).
fn composite_format(code: Option<u16>) -> Option<ContentFormat> {
    match code.and_then(ContentFormat::from_code) {
        Some(f @ (ContentFormat::SenmlJson | ContentFormat::SenmlCbor)) => Some(f),
        _ => None,
    }
}

/// The readable values under each of `paths`, merged and sorted. Paths that do not
/// exist are left out; when none exists, 4.04. Any other refusal refuses the whole.
pub fn collect_composite(objects: &Objects, paths: &[Path]) -> Result<Vec<Record>, DmError> {
    let mut records = Vec::new();
    for path in paths {
        if path.is_root() {
            return Err(DmError::BadRequest(
                "a composite operation cannot name the root".into(),
            ));
        }
        match collect(objects, path) {
            Ok(found) => records.extend(found),
            Err(DmError::NotFound) => tracing::debug!(%path, "composite: not found, left out"),
            Err(e) => return Err(e),
        }
    }
    if records.is_empty() {
        return Err(DmError::NotFound);
    }
    records.sort_by_key(|r| r.path);
    records.dedup_by(|a, b| a.path == b.path);
    Ok(records)
}

/// Read-Composite (`FETCH /` with a SenML list of paths).
fn read_composite(objects: &Objects, req: &DmRequest<'_>) -> Result<DmResponse, DmError> {
    let request_format =
        composite_format(req.content_format).ok_or(DmError::UnsupportedContentFormat)?;
    let format = match req.accept {
        None => request_format,
        Some(code) => composite_format(Some(code)).ok_or(DmError::NotAcceptable)?,
    };
    let paths = codec::composite::decode_paths(request_format, req.payload).map_err(codec_error)?;
    let records = collect_composite(objects, &paths)?;
    let payload = codec::encode(format, &Path::ROOT, &records).map_err(codec_error)?;
    Ok(DmResponse::content(format, payload))
}

/// Write-Composite (`iPATCH /` with SenML values): a partial update of every named
/// resource, checked whole before anything is written.
fn write_composite(
    objects: &mut Objects,
    req: &DmRequest<'_>,
    actions: &mut Vec<Action>,
) -> Result<DmResponse, DmError> {
    let format = composite_format(req.content_format).ok_or(DmError::UnsupportedContentFormat)?;
    let ty = |p: &Path| -> Option<ResourceType> {
        let obj = objects.get(&p.object_id()?).filter(|o| o.def().id != 0)?;
        obj.def().resource(p.resource_id()?).map(|r| r.ty)
    };
    let records = codec::decode(format, &Path::ROOT, req.payload, &ty).map_err(codec_error)?;
    let mut by_object: BTreeMap<u16, Vec<Record>> = BTreeMap::new();
    for r in records {
        by_object
            .entry(r.path.object_id().unwrap_or_default())
            .or_default()
            .push(r);
    }
    let mut writes = Vec::new();
    for (o, records) in by_object {
        let obj = object(objects, &Path::object(o))?;
        for r in &records {
            check_instance(obj, &r.path)?;
        }
        let mut values = group(obj, records, |d| d.operations.writable())?;
        merge_multiple(obj, &mut values);
        writes.push((o, values));
    }
    for (o, values) in writes {
        let obj = object_mut(objects, &Path::object(o))?;
        for ((i, r), value) in values {
            actions.extend(obj.write(i, r, value, true)?);
        }
    }
    Ok(DmResponse::empty(ResponseType::Changed))
}

/// Partial update of multiple resources: the new instances join those already there.
fn merge_multiple(obj: &dyn Object, values: &mut BTreeMap<(u16, u16), ResourceValue>) {
    for ((i, r), value) in values.iter_mut() {
        if let ResourceValue::Multiple(new) = value {
            if let Some(ResourceValue::Multiple(mut old)) = obj.read(*i, *r) {
                old.append(new);
                *new = old;
            }
        }
    }
}

fn execute(
    objects: &mut Objects,
    req: &DmRequest<'_>,
    actions: &mut Vec<Action>,
) -> Result<DmResponse, DmError> {
    let args = std::str::from_utf8(req.payload)
        .map_err(|_| DmError::BadRequest("Execute arguments are not UTF-8".into()))?;
    check_execute_args(args)?;
    let (Some(i), Some(r)) = (req.path.instance_id(), req.path.resource_id()) else {
        return Err(DmError::MethodNotAllowed);
    };
    let obj = object_mut(objects, &req.path)?;
    check_instance(obj.as_ref(), &req.path)?;
    actions.extend(obj.execute(i, r, args)?);
    Ok(DmResponse::empty(ResponseType::Changed))
}

/// Core TS §5.4.5: `arg *("," arg)`, arg = digit [ "=" "'" *char "'" ].
fn check_execute_args(args: &str) -> Result<(), DmError> {
    let bad = || DmError::BadRequest(format!("malformed Execute arguments {args:?}"));
    let mut rest = args.as_bytes();
    while !rest.is_empty() {
        let (&digit, after) = rest.split_first().ok_or_else(bad)?;
        if !digit.is_ascii_digit() {
            return Err(bad());
        }
        rest = after;
        if let Some(after) = rest.strip_prefix(b"='") {
            let end = after.iter().position(|&b| b == b'\'').ok_or_else(bad)?;
            rest = &after[end + 1..];
        }
        match rest.split_first() {
            None => break,
            Some((b',', after)) if !after.is_empty() => rest = after,
            _ => return Err(bad()),
        }
    }
    Ok(())
}

fn create(
    objects: &mut Objects,
    req: &DmRequest<'_>,
    actions: &mut Vec<Action>,
) -> Result<DmResponse, DmError> {
    let path = req.path;
    let obj = object(objects, &path)?;
    if !obj.def().multiple {
        return Err(DmError::MethodNotAllowed);
    }
    let existing = obj.instances();
    // The server names the instance in an Object Instance TLV or in SenML names; with a
    // bare list of resources the client picks the lowest free ID.
    let records = match decode(objects, req, &path) {
        Ok(records) => records,
        Err(_) => {
            let free = (0..=crate::path::MAX_ID)
                .find(|i| !existing.contains(i))
                .ok_or(DmError::Internal("no free instance ID".into()))?;
            decode(objects, req, &Path::instance(obj.def().id, free))?
        }
    };
    let instance = match records.first().and_then(|r| r.path.instance_id()) {
        Some(i) => i,
        None => (0..=crate::path::MAX_ID)
            .find(|i| !existing.contains(i))
            .ok_or(DmError::Internal("no free instance ID".into()))?,
    };
    if records
        .iter()
        .any(|r| r.path.instance_id() != Some(instance))
    {
        return Err(DmError::BadRequest(
            "Create names more than one instance".into(),
        ));
    }
    if existing.contains(&instance) {
        return Err(DmError::BadRequest(format!("instance {instance} exists")));
    }
    let values = group(obj, records, |d| !d.operations.executable())?;
    let o = obj.def().id;
    let obj = object_mut(objects, &path)?;
    obj.create(instance)?;
    for ((i, r), value) in values {
        match obj.write(i, r, value, true) {
            Ok(a) => actions.extend(a),
            Err(e) => {
                let _ = obj.delete(instance);
                return Err(e);
            }
        }
    }
    Ok(DmResponse {
        location: Some(Path::instance(o, instance)),
        ..DmResponse::empty(ResponseType::Created)
    })
}

fn delete(objects: &mut Objects, req: &DmRequest<'_>) -> Result<DmResponse, DmError> {
    let path = req.path;
    let obj = object_mut(objects, &path)?;
    check_instance(obj.as_ref(), &path)?;
    match path.instance_id() {
        Some(i) if path.len() == 2 => {
            obj.delete(i)?;
            Ok(DmResponse::empty(ResponseType::Deleted))
        }
        _ => Err(DmError::MethodNotAllowed),
    }
}

fn discover(
    objects: &Objects,
    attributes: &AttributeStore,
    req: &DmRequest<'_>,
) -> Result<DmResponse, DmError> {
    let path = req.path;
    if path.is_root() || path.len() > 3 {
        return Err(DmError::MethodNotAllowed);
    }
    let obj = object(objects, &path)?;
    check_instance(obj, &path)?;
    let def = obj.def();
    let mut depth = match path.len() {
        1 => 2,
        2 => 1,
        _ => 0,
    };
    for q in req.queries {
        match q.strip_prefix("depth=").map(str::parse::<usize>) {
            Some(Ok(d)) if d <= 3 => depth = d,
            None => {}
            _ => return Err(DmError::BadRequest(format!("bad Discover query {q:?}"))),
        }
    }
    let mut links = Vec::new();
    let max_len = path.len() + depth;
    let instances = path
        .instance_id()
        .map_or_else(|| obj.instances(), |i| vec![i]);
    let with_attrs = |mut link: Link, p: Path| {
        if let Some(a) = attributes.get(req.server, &p) {
            link.attrs.extend(a.link_attrs());
        }
        link
    };
    if path.len() == 1 {
        links.push(with_attrs(object_link(def.id, def.version), path));
    }
    for i in instances {
        if max_len >= 2 && path.len() <= 2 {
            let p = Path::instance(def.id, i);
            links.push(with_attrs(
                Link {
                    target: p.to_string(),
                    attrs: Vec::new(),
                },
                p,
            ));
        }
        for r in def.resources {
            if path.resource_id().is_some_and(|id| id != r.id) || !(max_len >= 3 || path.len() == 3)
            {
                continue;
            }
            let value = obj.read(i, r.id);
            if value.is_none() && !obj.has_resource(i, r.id) {
                if path.len() == 3 {
                    return Err(DmError::NotFound);
                }
                continue;
            }
            let mut attrs = Vec::new();
            if let Some(ResourceValue::Multiple(map)) = &value {
                attrs.push(("dim".to_string(), Some(map.len().to_string())));
            }
            let p = Path::resource(def.id, i, r.id);
            links.push(with_attrs(
                Link {
                    target: p.to_string(),
                    attrs,
                },
                p,
            ));
            if let (true, Some(ResourceValue::Multiple(map))) = (max_len >= 4, &value) {
                for ri in map.keys() {
                    links.push(Link {
                        target: Path::resource_instance(def.id, i, r.id, *ri).to_string(),
                        attrs: Vec::new(),
                    });
                }
            }
        }
    }
    let payload = codec::link::encode_links(&links).into_bytes();
    Ok(DmResponse::content(ContentFormat::LinkFormat, payload))
}

/// `</o>` with the object version when it is not 1.0 (Core TS §6.2.1).
pub fn object_link(id: u16, version: &str) -> Link {
    let attrs = if version == "1.0" {
        Vec::new()
    } else {
        vec![("ver".to_string(), Some(version.to_string()))]
    };
    Link {
        target: Path::object(id).to_string(),
        attrs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::server::Server;

    #[test]
    fn read_of_an_object_without_instances_is_empty_content() {
        let mut objects: Objects = BTreeMap::new();
        objects.insert(1, Box::new(Server::new()));
        for (accept, payload) in [(None, &b""[..]), (Some(110), &b"[]"[..])] {
            let req = DmRequest {
                server: 1,
                method: RequestType::Get,
                path: Path::object(1),
                queries: &[],
                accept,
                content_format: None,
                payload: &[],
            };
            let resp = dispatch(
                &mut objects,
                &mut AttributeStore::default(),
                &req,
                ContentFormat::Tlv,
                &mut Vec::new(),
            );
            assert_eq!(resp.code, ResponseType::Content);
            assert_eq!(resp.payload, payload);
        }
    }

    #[test]
    fn execute_argument_syntax() {
        for ok in ["", "0", "1='x'", "0,1='a,b',2", "5=''"] {
            assert!(check_execute_args(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "1=", "1='x", "1,", ",1", "12", "1='x'y"] {
            assert!(check_execute_args(bad).is_err(), "{bad}");
        }
    }
}
