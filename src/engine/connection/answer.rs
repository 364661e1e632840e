//! The HTTP side of a connection: decoding requests from buffered input in
//! order, running the handler (a panic becomes a 500), the upgrade step,
//! framing answers into the output queue, holding back delayed answers,
//! ending requests for telemetry and the drain's count, and refusing
//! malformed input.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{Connection, Delayed, Phase};
use crate::app::{Ctx, Request, Response};
use crate::engine::observe::{Answered, Finished, Limit, Observer, Refusal, RequestStart};
use crate::engine::output::MAX_OUTPUT_BATCH;
use crate::engine::respond::{self, ReqMeta};
use crate::engine::upgrade;
use crate::engine::Env;
use crate::http::head::{EMPTY_HEADER, MAX_HEADERS};
use crate::http::{encode, Decoded, HttpError};

impl<O: Observer> Connection<O> {
    /// Nothing stands between buffered input and the next request.
    pub(super) fn can_process(&self) -> bool {
        !(self.closed
            || self.close_after_write
            || self.delayed.is_some()
            || self.out.body.is_some()
            || self.ws.is_some()
            || self.phase == Phase::Lingering)
    }

    /// Answers what buffered input allows; true when anything moved.
    pub(super) fn progress(&mut self, env: &mut Env<'_, O>) -> bool {
        if self.rbuf.is_empty() || !self.can_process() {
            return false;
        }
        let mut buffered = std::mem::take(&mut self.rbuf);
        let used = self.process(env, &buffered);
        if !self.closed {
            // Keep the allocation for the next leftovers.
            buffered.drain(..used);
            self.rbuf = buffered;
        }
        used > 0 || self.out.is_pending()
    }

    /// Decodes and answers requests from `input`; returns bytes consumed.
    /// Stops at an answer that must be out before the next one can be
    /// produced (a file, a stream, a held-back or final answer), or when
    /// enough output is queued for one write.
    pub(super) fn process(&mut self, env: &mut Env<'_, O>, input: &[u8]) -> usize {
        let mut at = 0;
        let limits = env.config.limits;
        loop {
            if !self.can_process() || self.out.bytes.len() > MAX_OUTPUT_BATCH || at >= input.len() {
                return at;
            }
            let mut storage = [EMPTY_HEADER; MAX_HEADERS];
            // The decoder leaves the connection while its request is
            // served, so the rest of the connection can be borrowed mutably.
            let mut decoder = std::mem::take(&mut self.decoder);
            let decoded = decoder.decode(
                &input[at..],
                &mut storage[..limits.max_headers.min(MAX_HEADERS)],
                &limits,
            );
            let step = match decoded {
                Ok(Decoded::Incomplete { send_continue }) => {
                    if send_continue {
                        self.out.buf().extend_from_slice(encode::CONTINUE);
                    }
                    if self.phase != Phase::Reading {
                        self.phase = Phase::Reading;
                        self.deadline = env.now + env.config.header_timeout;
                    }
                    None
                }
                Ok(Decoded::Request {
                    head,
                    body,
                    consumed,
                }) => {
                    self.phase = Phase::Busy;
                    self.requests += 1;
                    let req = Request {
                        method: head.method,
                        path: head.path,
                        query: head.query,
                        version: head.version,
                        headers: head.headers,
                        body,
                        peer: self.peer,
                        local: self.local,
                    };
                    let framing = (head.keep_alive, head.keep_alive_requested);
                    self.dispatch(env, &req, framing);
                    Some(consumed)
                }
                Err(e) => {
                    self.refuse(env, e);
                    Some(input.len() - at)
                }
            };
            self.decoder = decoder;
            match step {
                None => return at,
                Some(n) => at += n,
            }
            if self.ws.is_some() && at < input.len() {
                // Bytes after the upgrade request belong to the session.
                let rest = input[at..].to_vec();
                self.ws_receive(env, &rest);
                return input.len();
            }
        }
    }

    /// Runs the handler for one request and queues (or holds back) its answer.
    pub(super) fn dispatch(
        &mut self,
        env: &mut Env<'_, O>,
        req: &Request<'_>,
        framing: (bool, bool),
    ) {
        let (keep_alive, keep_alive_requested) = framing;
        let route = env.handler.route(req);
        let draining = env.draining || self.draining;
        let span = env.observer.request_started(&RequestStart {
            request: req,
            route,
            draining,
        });
        let mut ctx = Ctx {
            worker: env.worker,
            draining,
            now: env.now,
            route,
        };
        let handler = &mut *env.handler;
        let result = env.observer.in_span(&span, || {
            catch_unwind(AssertUnwindSafe(|| handler.call(req, &mut ctx)))
        });
        let mut response = match result {
            Ok(r) => r,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(worker = env.worker, route, panic = %msg, "handler panicked; answered 500");
                Response::error(500, "internal server error")
            }
        };
        // The upgrade step: the route takes sessions, the engine shakes hands.
        let mut session = None;
        if let Some(offer) = response.upgrade.take() {
            let hs = upgrade::accept(req, &offer.options, offer.app);
            // Headers the route set (a cookie, a rule's header) go out
            // with the handshake's answer, whichever it is.
            let route_headers = std::mem::take(&mut response.headers);
            response = hs.response;
            response.headers.extend(route_headers);
            session = hs.upgrade;
        }
        env.observer.answered(
            &span,
            &Answered {
                request: req,
                status: response.status,
                bytes: response.body.len().unwrap_or(0),
            },
        );
        let meta = ReqMeta {
            version: req.version,
            keep_alive,
            keep_alive_requested,
            head: req.is_head(),
            route,
            span,
        };
        match response.delay {
            Some(d) if !d.is_zero() && session.is_none() => {
                self.delayed = Some(Box::new(Delayed {
                    at: env.now + d,
                    response,
                    meta,
                }));
            }
            _ => self.respond(env, response, meta, session),
        }
    }

    /// Encodes an answer and records its telemetry.
    pub(super) fn respond(
        &mut self,
        env: &mut Env<'_, O>,
        response: Response,
        meta: ReqMeta<O::Span>,
        session: Option<crate::ws::Upgrade>,
    ) {
        let status = response.status;
        let closing = env.draining || self.draining;
        let traceresponse = env.observer.traceresponse(&meta.span);
        let encoded = respond::encode(
            &mut self.out,
            env.date,
            &meta,
            traceresponse.as_deref(),
            response,
            closing,
        );
        if let Some(upgrade) = session.filter(|_| status == 101) {
            let span = env.observer.ws_opened(&meta.span, meta.route);
            self.complete(env, meta.span, status, None);
            self.ws_start(env, upgrade, span, closing);
            return;
        }
        let keep_alive = meta.keep_alive;
        if encoded.body_follows {
            self.sending = Some((meta, status));
        } else {
            self.complete(env, meta.span, status, None);
        }
        if encoded.close {
            self.close_after_write = true;
            // We chose to close (a drain, the application) while the client
            // may already be sending its next request.
            self.linger = keep_alive;
        }
        if !self.close_after_write && !encoded.body_follows {
            self.phase = Phase::Idle;
            self.deadline = env.now + env.config.idle_timeout;
        }
    }

    /// A file or stream body has been handed to the transport in full.
    pub(super) fn body_done(&mut self, env: &mut Env<'_, O>) {
        if env.draining || self.draining {
            // Its head went out before the drain (no `Connection: close`):
            // end the connection now that the answer is complete.
            self.close_after_write = true;
            self.linger = true;
        } else if !self.close_after_write {
            self.phase = Phase::Idle;
            self.deadline = env.now + env.config.idle_timeout;
        }
        if let Some((meta, status)) = self.sending.take() {
            self.complete(env, meta.span, status, None);
        }
    }

    /// A request is over: its span, metrics and the drain's count.
    pub(super) fn complete(
        &mut self,
        env: &mut Env<'_, O>,
        span: O::Span,
        status: u16,
        error: Option<&'static str>,
    ) {
        if (env.draining || self.draining) && error.is_none() {
            self.drained += 1;
        }
        env.observer
            .request_finished(span, Finished { status, error });
    }

    /// Answers a protocol error (or a head timeout) and closes after it.
    pub(super) fn refuse(&mut self, env: &mut Env<'_, O>, e: HttpError) {
        tracing::debug!(peer = %self.peer, status = e.status(), reason = e.reason(), "refused request");
        self.close_after_write = true;
        self.linger = true;
        self.rbuf.clear();
        // A refusal is a request too: it gets a span (with `error.type`)
        // and a place in the duration histogram, without a route.
        let span = env.observer.request_refused(&Refusal {
            peer: self.peer,
            local: self.local,
            draining: env.draining || self.draining,
        });
        if let Some(limit) = Limit::of(e) {
            env.observer.limit_refused(limit);
        }
        respond::refusal(&mut self.out, env.date, e);
        self.complete(env, span, e.status(), Some(e.kind()));
    }
}
