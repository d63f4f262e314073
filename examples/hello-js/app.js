// hello-js: an example dbagent plugin in JavaScript (componentize-js).
//
// GET /hello-js                     {"hello": "<user>", "language": "javascript"}
// GET /hello-js/databases?prefix=x  the databases whose name starts with x
// GET /hello-js/boom                throws: the host answers 500 with the message
// GET /hello-js/hog                 allocates past the memory limit: 500

import { HttpError, Router, query } from './dbagent.js';

const router = new Router()
  .get('/', (request) => ({ hello: request.user ?? 'world', language: 'javascript' }))
  .get('/databases', (request) => {
    const prefix = request.queryParam('prefix') ?? '';
    if (prefix.length > 63) throw new HttpError(400, 'prefix is at most 63 characters');
    const rows = query(
      'SELECT datname::text AS name FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1',
      [prefix],
    );
    return { databases: rows.map((row) => row.name) };
  })
  .get('/boom', () => {
    throw new Error('boom from hello-js');
  })
  .get('/hog', () => {
    const hoard = [];
    for (let i = 0; i < 1024; i++) hoard.push(new Uint8Array(1 << 20).fill(1));
    return { allocated_mib: hoard.length };
  });

export const handler = {
  handle(request) {
    return router.dispatch(request);
  },
};
