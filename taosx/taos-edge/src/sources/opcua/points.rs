//! Which nodes to collect: a list of node ids (named by reading their browse names), a CSV
//! point list, or browsing the address space from a root with filters.

use super::source::{read_point_list, BrowseFilter, ListedPoint, Points};
use super::values::PointInfo;
use super::OpcUaError;
use opcua::client::Session;
use opcua::types::{
    AttributeId, BrowseDescription, BrowseDirection, BrowseResultMask, NodeClass, NodeId,
    ReadValueId, ReferenceTypeId, TimestampsToReturn, Variant,
};
use std::collections::HashSet;

/// More points than this in one task is a configuration mistake (a browse from the root).
pub const MAX_POINTS: usize = 200_000;
/// Nodes per Read or Browse request (servers limit operations per call).
pub const CHUNK: usize = 1000;

/// The task's points, resolved against the connected server.
pub async fn resolve(session: &Session, points: &Points) -> Result<Vec<PointInfo>, OpcUaError> {
    let listed = match points {
        Points::Nodes(n) => n
            .iter()
            .map(|id| ListedPoint {
                id: id.clone(),
                fields: Vec::new(),
            })
            .collect(),
        Points::File(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| OpcUaError::Points(format!("point list {path}: {e}")))?;
            read_point_list(&text).map_err(|e| OpcUaError::Points(format!("{path}: {e}")))?
        }
        Points::Browse(f) => return browse(session, f).await,
    };
    let nodes = listed
        .iter()
        .map(|p| {
            p.id.parse::<NodeId>()
                .map_err(|_| OpcUaError::Points(format!("invalid node id '{}'", p.id)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = names(session, nodes).await?;
    for (p, l) in out.iter_mut().zip(listed) {
        p.extra = l.fields;
    }
    Ok(out)
}

/// Point infos for listed nodes, with their browse and display names and descriptions (the
/// id stands in for a missing name); the path of a listed node is its browse name.
async fn names(session: &Session, nodes: Vec<NodeId>) -> Result<Vec<PointInfo>, OpcUaError> {
    const ATTRS: [AttributeId; 3] = [
        AttributeId::BrowseName,
        AttributeId::DisplayName,
        AttributeId::Description,
    ];
    let mut out = Vec::with_capacity(nodes.len());
    for chunk in nodes.chunks(CHUNK / ATTRS.len()) {
        let reads: Vec<ReadValueId> = chunk
            .iter()
            .flat_map(|n| ATTRS.map(|a| ReadValueId::new(n.clone(), a)))
            .collect();
        let values = session
            .read(&reads, TimestampsToReturn::Neither, 0.0)
            .await
            .map_err(|e| OpcUaError::Session(format!("reading node attributes: {e}")))?;
        for (node, dv) in chunk.iter().zip(values.chunks(ATTRS.len())) {
            let name = match dv.first().and_then(|d| d.value.as_ref()) {
                Some(Variant::QualifiedName(q)) => q.name.as_ref().to_string(),
                _ => super::values::short_id(node),
            };
            out.push(PointInfo {
                node: node.clone(),
                display_name: text(dv.get(1)).unwrap_or_else(|| name.clone()),
                description: text(dv.get(2)).unwrap_or_default(),
                path: name.clone(),
                name,
                extra: Vec::new(),
                statics: Default::default(),
            });
        }
    }
    Ok(out)
}

/// The text of a LocalizedText attribute.
fn text(dv: Option<&opcua::types::DataValue>) -> Option<String> {
    match dv?.value.as_ref()? {
        Variant::LocalizedText(t) => Some(t.text.as_ref().to_string()),
        Variant::String(s) => Some(s.as_ref().to_string()),
        _ => None,
    }
}

/// Fill in the descriptions of browsed points (a browse result does not carry them).
async fn describe(session: &Session, points: &mut [PointInfo]) -> Result<(), OpcUaError> {
    for chunk in points.chunks_mut(CHUNK) {
        let reads: Vec<ReadValueId> = chunk
            .iter()
            .map(|p| ReadValueId::new(p.node.clone(), AttributeId::Description))
            .collect();
        let values = session
            .read(&reads, TimestampsToReturn::Neither, 0.0)
            .await
            .map_err(|e| OpcUaError::Session(format!("reading descriptions: {e}")))?;
        for (p, dv) in chunk.iter_mut().zip(values.iter()) {
            p.description = text(Some(dv)).unwrap_or_default();
        }
    }
    Ok(())
}

fn class_of(name: &str) -> NodeClass {
    match name {
        "Object" => NodeClass::Object,
        "Method" => NodeClass::Method,
        "ObjectType" => NodeClass::ObjectType,
        "VariableType" => NodeClass::VariableType,
        "ReferenceType" => NodeClass::ReferenceType,
        "DataType" => NodeClass::DataType,
        "View" => NodeClass::View,
        _ => NodeClass::Variable,
    }
}

/// Breadth-first browse along hierarchical references, keeping the nodes that pass the
/// filters. Each node is visited once (address spaces have cycles).
async fn browse(session: &Session, f: &BrowseFilter) -> Result<Vec<PointInfo>, OpcUaError> {
    let bad = |what: &str, e: regex::Error| OpcUaError::Points(format!("{what}: {e}"));
    let id_re = f
        .id_regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| bad("id_regex", e))?;
    let name_re = f
        .name_regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| bad("name_regex", e))?;
    let classes: Vec<NodeClass> = f.node_classes.iter().map(|c| class_of(c)).collect();
    let root: NodeId = f
        .root
        .parse()
        .map_err(|_| OpcUaError::Points(format!("invalid root node '{}'", f.root)))?;
    let mut seen: HashSet<NodeId> = HashSet::from([root.clone()]);
    // Each node with its browse path from the root (`Plant/Line1/Temp`; paths start below the
    // Objects folder, which every path would share).
    let root_path = if root == NodeId::objects_folder_id() {
        String::new()
    } else {
        names(session, vec![root.clone()])
            .await?
            .pop()
            .map(|p| p.name)
            .unwrap_or_default()
    };
    let mut level: Vec<(NodeId, String)> = vec![(root, root_path)];
    let mut out = Vec::new();
    for _ in 0..f.depth {
        if level.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for chunk in level.chunks(CHUNK) {
            let desc: Vec<BrowseDescription> = chunk
                .iter()
                .map(|(n, _)| BrowseDescription {
                    node_id: n.clone(),
                    browse_direction: BrowseDirection::Forward,
                    reference_type_id: ReferenceTypeId::HierarchicalReferences.into(),
                    include_subtypes: true,
                    node_class_mask: 0, // every class; filtered below
                    result_mask: BrowseResultMask::All as u32,
                })
                .collect();
            let mut results = session
                .browse(&desc, CHUNK as u32, None)
                .await
                .map_err(|e| OpcUaError::Session(format!("browse: {e}")))?;
            // Follow continuation points until every node's references are in, remembering
            // which browsed node (its path) each reference came from.
            let mut refs = Vec::new();
            let mut from: Vec<usize> = (0..chunk.len()).collect();
            loop {
                let mut cps = Vec::new();
                let mut cp_from = Vec::new();
                for (r, i) in results.into_iter().zip(from.iter()) {
                    refs.extend(
                        r.references
                            .unwrap_or_default()
                            .into_iter()
                            .map(|x| (*i, x)),
                    );
                    if !r.continuation_point.is_null() {
                        cps.push(r.continuation_point);
                        cp_from.push(*i);
                    }
                }
                if cps.is_empty() {
                    break;
                }
                results = session
                    .browse_next(false, &cps)
                    .await
                    .map_err(|e| OpcUaError::Session(format!("browse next: {e}")))?;
                from = cp_from;
            }
            for (parent, r) in refs {
                if r.node_id.server_index != 0 {
                    continue; // another server's node
                }
                let node = r.node_id.node_id;
                if !seen.insert(node.clone()) {
                    continue;
                }
                let name = r.browse_name.name.as_ref().to_string();
                let path = match chunk[parent].1.as_str() {
                    "" => name.clone(),
                    p => format!("{p}/{name}"),
                };
                let ns_ok = if f.namespaces.is_empty() {
                    node.namespace != 0
                } else {
                    f.namespaces.contains(&node.namespace)
                };
                if ns_ok
                    && classes.contains(&r.node_class)
                    && id_re
                        .as_ref()
                        .is_none_or(|re| re.is_match(&node.to_string()))
                    && name_re.as_ref().is_none_or(|re| re.is_match(&name))
                {
                    if out.len() >= MAX_POINTS {
                        return Err(OpcUaError::Points(format!(
                            "browsing found more than {MAX_POINTS} points: narrow the filters"
                        )));
                    }
                    out.push(PointInfo {
                        node: node.clone(),
                        name,
                        display_name: r.display_name.text.as_ref().to_string(),
                        description: String::new(),
                        path: path.clone(),
                        extra: Vec::new(),
                        statics: Default::default(),
                    });
                }
                // Variables can have child variables (properties); objects have children.
                if matches!(r.node_class, NodeClass::Object | NodeClass::Variable) {
                    next.push((node, path));
                }
            }
        }
        level = next;
    }
    if out.is_empty() {
        return Err(OpcUaError::Points(format!(
            "browsing from {} found no point matching the filters",
            f.root
        )));
    }
    describe(session, &mut out).await?;
    Ok(out)
}
