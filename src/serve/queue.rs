//! A queue bounded in bytes, not in messages.
//!
//! paho acknowledges a request (PUBACK) before the server has done
//! anything with it, so whatever waits inside the server is memory the
//! broker will never resend and the client will never slow down for. A
//! count bound would not do: one request may carry a few bytes or a few
//! hundred KB of topic and properties. Each queue therefore has a byte
//! budget; a request that does not fit is handed back to the caller (who
//! refuses it with `busy`) instead of waiting. The bytes are given back
//! when the request's [`Ticket`] is dropped, i.e. once its reply is out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::memory::Memory;
use crate::mqtt::Message;

/// What a received message holds besides its topic, properties and
/// payload (paho's message and property structs, the channel slot, the
/// allocations' headers): counted so that many tiny requests cannot
/// exceed the budget either.
pub const OVERHEAD: usize = 512;

/// The bytes a received message holds while it waits: topic, all its
/// properties (as encoded: response topic, correlation data, content type,
/// user properties...), payload, and [`OVERHEAD`].
pub fn cost_of(msg: &Message) -> usize {
    msg.size() + OVERHEAD
}

/// A FIFO of items, each with its cost in bytes, holding at most
/// `capacity` bytes. Any number of producers, one consumer.
pub struct ByteQueue<T> {
    tx: Sender<(T, usize)>,
    rx: Receiver<(T, usize)>,
    capacity: usize,
    used: AtomicUsize,
    memory: Arc<Memory>,
}

/// An item's share of its queue's budget, given back when dropped.
#[must_use = "the bytes are given back when the ticket is dropped"]
pub struct Ticket<'q, T> {
    queue: &'q ByteQueue<T>,
    cost: usize,
}

/// What [`ByteQueue::recv_or`] got.
pub enum Next<'q, T, O> {
    /// An item and its share of the budget.
    Item(T, Ticket<'q, T>),
    /// An order.
    Order(O),
    /// The orders' sender is gone.
    Closed,
    /// Nothing within the wait.
    Idle,
}

impl<T> Drop for Ticket<'_, T> {
    fn drop(&mut self) {
        self.queue.used.fetch_sub(self.cost, Ordering::AcqRel);
        self.queue.memory.sub(self.cost);
    }
}

impl<T> Ticket<'_, T> {
    /// The bytes this ticket holds.
    pub fn cost(&self) -> usize {
        self.cost
    }
}

impl<T> ByteQueue<T> {
    /// An empty queue of at most `capacity` bytes, also counted in `memory`.
    pub fn new(capacity: usize, memory: Arc<Memory>) -> ByteQueue<T> {
        let (tx, rx) = unbounded();
        ByteQueue {
            tx,
            rx,
            capacity,
            used: AtomicUsize::new(0),
            memory,
        }
    }

    /// The budget, in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The bytes held now.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Queues `item` if its `cost` fits in what is left of the budget;
    /// hands it back otherwise. Never blocks.
    ///
    /// # Errors
    /// The item itself, when it does not fit.
    pub fn offer(&self, item: T, cost: usize) -> Result<(), T> {
        let reserved = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(cost)
                    .filter(|&total| total <= self.capacity)
            });
        if reserved.is_err() {
            return Err(item);
        }
        self.memory.add(cost);
        // Cannot fail: the queue holds the receiver.
        let _ = self.tx.send((item, cost));
        Ok(())
    }

    /// The oldest item, waiting at most `wait` for one.
    #[cfg(test)]
    pub fn recv_timeout(&self, wait: Duration) -> Option<(T, Ticket<'_, T>)> {
        let (item, cost) = self.rx.recv_timeout(wait).ok()?;
        Some((item, Ticket { queue: self, cost }))
    }

    /// The oldest item, or an order from `orders` (whichever comes first),
    /// waiting at most `wait`: how a lane or the refusal thread is told to
    /// drain or stop without polling a flag.
    pub fn recv_or<O>(&self, orders: &Receiver<O>, wait: Duration) -> Next<'_, T, O> {
        crossbeam_channel::select! {
            recv(self.rx) -> got => match got {
                Ok((item, cost)) => Next::Item(item, Ticket { queue: self, cost }),
                Err(_) => Next::Idle,
            },
            recv(orders) -> order => match order {
                Ok(order) => Next::Order(order),
                // The order's sender is gone: the server is stopping.
                Err(_) => Next::Closed,
            },
            default(wait) => Next::Idle,
        }
    }

    /// The oldest item, if one is waiting.
    pub fn try_recv(&self) -> Option<(T, Ticket<'_, T>)> {
        let (item, cost) = self.rx.try_recv().ok()?;
        Some((item, Ticket { queue: self, cost }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_in_bytes_and_comes_back_when_the_ticket_is_dropped() {
        let memory = Arc::new(Memory::default());
        let q = ByteQueue::new(100, memory.clone());
        assert!(q.offer("a", 60).is_ok());
        assert_eq!(q.offer("b", 41), Err("b"));
        assert!(q.offer("c", 40).is_ok());
        assert_eq!((q.used(), memory.queued()), (100, 100));
        let (item, ticket) = q.try_recv().unwrap();
        assert_eq!((item, ticket.cost()), ("a", 60));
        assert_eq!(
            q.offer("d", 1),
            Err("d"),
            "still held until the ticket drops"
        );
        drop(ticket);
        assert!(q.offer("d", 60).is_ok());
        assert_eq!(q.try_recv().map(|(i, _)| i), Some("c"));
        assert_eq!(q.try_recv().map(|(i, _)| i), Some("d"));
        assert!(q.try_recv().is_none());
        assert_eq!((q.used(), memory.queued()), (0, 0));
    }

    #[test]
    fn an_item_larger_than_the_whole_budget_never_fits() {
        let q = ByteQueue::new(10, Arc::new(Memory::default()));
        assert_eq!(q.offer(1, 11), Err(1));
        assert_eq!(q.offer(2, usize::MAX), Err(2));
        assert_eq!(q.used(), 0);
    }

    #[test]
    fn recv_timeout_hands_over_a_waiting_item_with_its_ticket() {
        let q = ByteQueue::new(10, Arc::new(Memory::default()));
        assert!(q.recv_timeout(Duration::from_millis(1)).is_none());
        q.offer("a", 4).unwrap();
        let (item, ticket) = q.recv_timeout(Duration::from_millis(1)).unwrap();
        assert_eq!((item, ticket.cost(), q.used()), ("a", 4, 4));
        drop(ticket);
        assert_eq!(q.used(), 0);
    }

    #[test]
    fn a_message_costs_its_topic_properties_payload_and_overhead() {
        let meta = crate::mqtt::MessageMeta {
            response_topic: Some("r/1".into()),
            correlation: Some(vec![1; 7]),
            ..crate::mqtt::MessageMeta::default()
        };
        let msg = Message::new("t/x", vec![0; 10], meta, false);
        let props = msg.props_len;
        assert!(props > 10, "{props}");
        assert_eq!(cost_of(&msg), 3 + props + 10 + OVERHEAD);
    }
}
