//! Applying [`MnodeRequest`]s to the catalog: one `handle_*` per request, each checking what
//! depends on the catalog and changing it, or failing without a trace.

use crate::catalog::{Catalog, DbInfo, VgroupInfo};
use crate::request::{MnodeReply, MnodeRequest, UserChange};
use common::{Code, TaosError, TaosResult};

pub fn apply(c: &mut Catalog, req: MnodeRequest) -> TaosResult<MnodeReply> {
    use MnodeRequest as R;
    match req {
        R::CreateDb {
            name,
            options,
            create_time,
            vgroups,
            if_not_exists,
            vnode_capacity,
        } => {
            if c.dbs.contains_key(&name) {
                return if if_not_exists {
                    Ok(MnodeReply::Db(None))
                } else {
                    Err(TaosError::of(Code::DB_ALREADY_EXIST))
                };
            }
            let in_use: usize = c.dbs.values().map(|d| d.vgroups.len()).sum();
            if in_use + vgroups.len() > vnode_capacity as usize {
                return Err(TaosError::new(
                    Code(0x0334),
                    format!(
                        "Out of dnodes: {} vnodes needed, supportVnodes is {vnode_capacity}",
                        in_use + vgroups.len()
                    ),
                ));
            }
            let mut vgs = Vec::with_capacity(vgroups.len());
            for p in vgroups {
                vgs.push(VgroupInfo {
                    id: c.next_vgroup_id,
                    hash_begin: p.hash_begin,
                    hash_end: p.hash_end,
                    dnode_id: p.dnode_id,
                });
                c.next_vgroup_id += 1;
            }
            let db = DbInfo {
                name: name.clone(),
                uid: c.alloc_uid(),
                create_time,
                options,
                vgroups: vgs,
            };
            c.dbs.insert(name, db.clone());
            Ok(MnodeReply::Db(Some(db)))
        }
        R::DropDb { name, if_exists } => match c.dbs.remove(&name) {
            Some(db) => {
                c.stables.remove(&name);
                for u in c.users.values_mut() {
                    u.privileges.remove(&name);
                }
                Ok(MnodeReply::Db(Some(db)))
            }
            None if if_exists => Ok(MnodeReply::Db(None)),
            None => Err(TaosError::of(Code::DB_NOT_EXIST)),
        },
        R::AlterDb { name, options } => {
            let db = c
                .dbs
                .get_mut(&name)
                .ok_or_else(|| TaosError::of(Code::DB_NOT_EXIST))?;
            db.options = options;
            Ok(MnodeReply::Db(Some(db.clone())))
        }
        R::CreateStable {
            mut info,
            if_not_exists,
        } => {
            c.db(&info.db)?;
            if c.stable(&info.db, &info.name).is_some() {
                return if if_not_exists {
                    Ok(MnodeReply::Stable(None))
                } else {
                    Err(TaosError::of(Code::STB_ALREADY_EXIST))
                };
            }
            info.uid = c.alloc_uid();
            c.stables
                .entry(info.db.clone())
                .or_default()
                .insert(info.name.clone(), info.clone());
            Ok(MnodeReply::Stable(Some(info)))
        }
        R::DropStable {
            db,
            name,
            if_exists,
        } => match c.stables.get_mut(&db).and_then(|m| m.remove(&name)) {
            Some(st) => Ok(MnodeReply::Stable(Some(st))),
            None if if_exists => Ok(MnodeReply::Stable(None)),
            None => Err(TaosError::of(Code::STB_NOT_EXIST)),
        },
        R::AlterStable { before, after } => {
            let cur = c
                .stables
                .get_mut(&before.db)
                .and_then(|m| m.get_mut(&before.name))
                .ok_or_else(|| {
                    TaosError::new(
                        Code::STB_NOT_EXIST,
                        format!("STable not exist: {}", before.name),
                    )
                })?;
            if *cur != before {
                return Err(TaosError::new(
                    Code::MND_TRANS_CONFLICT,
                    format!("{} was altered meanwhile: try again", before.name),
                ));
            }
            *cur = after.clone();
            Ok(MnodeReply::Stable(Some(after)))
        }
        R::CreateUser(u) => {
            if c.users.contains_key(&u.name) {
                return Err(TaosError::of(Code::USER_ALREADY_EXIST));
            }
            c.users.insert(u.name.clone(), u);
            Ok(MnodeReply::Done)
        }
        R::AlterUser { name, change } => {
            let u = c.users.get_mut(&name).ok_or_else(|| invalid_user(&name))?;
            match change {
                UserChange::PassHash(h) => u.pass_hash = h,
                UserChange::Enable(false) if u.superuser => {
                    return Err(TaosError::new(
                        Code::NO_RIGHTS,
                        "the root user cannot be disabled",
                    ))
                }
                UserChange::Enable(v) => u.enable = v,
                UserChange::Sysinfo(v) => u.sysinfo = v,
                UserChange::Createdb(v) => u.createdb = v,
            }
            Ok(MnodeReply::Done)
        }
        R::DropUser { name } => {
            match c.users.get(&name) {
                None => return Err(invalid_user(&name)),
                Some(u) if u.superuser => {
                    return Err(TaosError::new(
                        Code::NO_RIGHTS,
                        "the root user cannot be dropped",
                    ))
                }
                _ => {}
            }
            c.users.remove(&name);
            Ok(MnodeReply::Done)
        }
        R::Grant {
            user,
            db,
            read,
            write,
            grant,
        } => {
            let u = c.users.get_mut(&user).ok_or_else(|| invalid_user(&user))?;
            let entry = u.privileges.entry(db.clone()).or_insert((false, false));
            if grant {
                entry.0 |= read;
                entry.1 |= write;
            } else {
                entry.0 &= !read;
                entry.1 &= !write;
            }
            if *entry == (false, false) {
                u.privileges.remove(&db);
            }
            Ok(MnodeReply::Done)
        }
        R::CreateTopic { info, max_topics } => {
            if c.topics.contains_key(&info.name) {
                return Err(TaosError::of(Code::TOPIC_ALREADY_EXIST));
            }
            if c.topics.len() >= max_topics {
                return Err(TaosError::of(Code::TOO_MANY_TOPICS));
            }
            c.topics.insert(info.name.clone(), info);
            Ok(MnodeReply::Done)
        }
        R::DropTopic { name } => {
            c.topics.remove(&name);
            Ok(MnodeReply::Done)
        }
    }
}

fn invalid_user(name: &str) -> TaosError {
    TaosError::new(Code::INVALID_USER, format!("Invalid user: {name}"))
}

impl DbInfo {
    /// The dnode hosting a vgroup of this database (dnode 1 when unknown).
    pub fn dnode_of(&self, vgid: u32) -> u32 {
        self.vgroups
            .iter()
            .find(|v| v.id == vgid)
            .map_or(1, |v| v.dnode_id)
    }
}
