// What the rows of the workers table are under each server model (`--model`,
// the `"model"` of /api/stats): the page must not call a preforked pool
// process or poll's one thread "an epoll loop".

const WORKERS: Record<string, string> = {
  epoll: 'Each worker thread runs its own epoll loop',
  io_uring: 'Each worker thread drives its own io_uring ring',
  poll: 'One thread waits in poll(2) over every socket',
  iterative: 'One thread serves one connection at a time; the next waits in the backlog',
  threaded: 'An acceptor starts a thread per connection; they are counted together',
  prethreaded: 'Each row is a pool thread serving one connection at a time',
  forking: 'The parent forks a child process per connection; children report to one row',
  preforked: 'Each row is a pool process accepting on the shared listener; figures are relayed to the parent',
};

/** One sentence on what a worker row is, ending before the shared tail. */
export function workersBlurb(model: string): string {
  return WORKERS[model] ?? (model ? `Workers of the ${model} model` : 'Workers');
}
