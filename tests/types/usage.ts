// Compile-only check of the Socket.IO typings (npx tsc -p tests/types): typed code written
// for socket.io 4.x compiles against sidewire after changing the import.
import http from 'node:http';
import sidewire, {
  Server, Namespace, Socket, BroadcastOperator, RemoteSocket, getServer, Engine, Adapter,
  type DisconnectReason, type ServerOptions, type ExtendedError,
} from '../../js/index.js';
import { createAdapter, createShardedAdapter, createStreamsAdapter } from '../../js/redis-adapter.js';
import { createAdapter as createStreamsAdapterAsOfficial } from '../../js/redis-streams-adapter.js';

interface ServerToClientEvents {
  noArg: () => void;
  basicEmit: (a: number, b: string, c: Buffer) => void;
  withAck: (d: string, callback: (e: number) => void) => void;
}

interface ClientToServerEvents {
  hello: (name: string) => void;
  add: (a: number, b: number, cb: (sum: number) => void) => void;
}

interface InterServerEvents {
  ping: () => void;
}

interface SocketData {
  name: string;
  age: number;
}

const httpServer = http.createServer();
const options: Partial<ServerOptions> = { path: '/socket.io', cors: { origin: ['http://a.test', /\.b\.test$/] }, transports: ['websocket'] };
const io = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>(httpServer, options);
const io2 = new Server({ engine: new Engine({ global: false }), serveClient: false });
const io3 = new Server(3000);
void io2;
void io3;

io.use((socket, next) => {
  socket.data.name = 'ada';
  const err: ExtendedError = new Error('nope');
  err.data = { code: 1 };
  next(Math.random() > 2 ? err : undefined);
});

io.on('connection', (socket) => {
  const s: Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData> = socket;
  s.emit('noArg');
  s.emit('basicEmit', 1, '2', Buffer.from([3]));
  s.emit('withAck', '4', (e) => {
    const n: number = e;
    void n;
  });
  // @ts-expect-error wrong argument type
  s.emit('basicEmit', 'one', '2', Buffer.from([3]));
  // @ts-expect-error unknown event
  s.emit('nope');

  s.timeout(1000).emit('withAck', '4', (err, e) => {
    const x: Error = err;
    const y: number = e;
    void x;
    void y;
  });
  s.emitWithAck('withAck', '4').then((e) => {
    const n: number = e;
    void n;
  });

  s.on('hello', (name) => {
    const str: string = name;
    void str;
  });
  s.on('add', (a, b, cb) => cb(a + b));
  s.on('disconnect', (reason: DisconnectReason) => {
    const r: string = reason;
    void r;
  });
  s.on('disconnecting', (reason) => void reason);
  s.use(([event, ...args], next) => {
    void event;
    void args;
    next();
  });
  s.onAny((event: string, ...args: any[]) => void [event, args]);
  s.onAnyOutgoing(() => {});

  s.join('room');
  s.join(['a', 'b']);
  s.leave('room');
  s.to('room').emit('basicEmit', 1, '2', Buffer.alloc(0));
  s.broadcast.except('x').emit('noArg');
  s.volatile.emit('noArg');
  s.compress(false).emit('noArg');
  s.disconnect(true);
  const rooms: Set<string> = s.rooms;
  const data: SocketData = s.data;
  const addr: string = s.handshake.address;
  const transport: string = s.conn.transport.name;
  s.conn.on('upgrade', (t) => void t.name);
  s.conn.on('packet', ({ type, data }) => void [type, data]);
  const sid: string = s.conn.id;
  const session: unknown = s.request.session; // what io.engine.use() middleware added
  const remote: string | undefined = s.request.socket.remoteAddress;
  void [sid, session, remote];
  void [rooms, data, addr, transport];
});

io.emit('noArg');
io.to('room').emit('basicEmit', 1, '2', Buffer.alloc(1));
io.in(['a', 'b']).except('c').emit('noArg');
io.timeout(500).emit('withAck', 'x', (err, responses) => {
  const e: Error = err;
  const list: number[] = responses;
  void [e, list];
});
io.timeout(500).emitWithAck('withAck', 'x').then((responses) => {
  const list: number[] = responses;
  void list;
});
// @ts-expect-error no ack without timeout() on a broadcast from the namespace
io.sockets.emit('withAck', 'x', () => {});

io.fetchSockets().then((sockets) => {
  for (const r of sockets) {
    const rs: RemoteSocket<ServerToClientEvents, SocketData> = r;
    rs.emit('noArg');
    rs.join('x');
    rs.leave('x');
    rs.disconnect();
    const name: string = rs.data.name;
    void name;
  }
});
io.socketsJoin('r');
io.in('r').socketsLeave(['a']);
io.disconnectSockets(true);
io.serverSideEmit('ping');

const admin: Namespace<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData> = io.of('/admin');
admin.use((socket, next) => next());
admin.on('connection', (socket) => socket.emit('noArg'));
io.of(/^\/dyn-\d+$/).on('connection', (socket) => void socket.nsp.name);
io.of((name, auth, next) => next(null, name.startsWith('/x') && auth.token === 'ok'));
const op: BroadcastOperator<any, SocketData> = io.local.volatile.compress(true);
void op;

const handled: boolean = io.handleRequest({} as http.IncomingMessage, {} as http.ServerResponse);
void handled;
io.attach(httpServer, { pingInterval: 10000 });
io.listen(3001, { transports: ['polling'] });

// The adapter views (socket.io's in-memory adapter shape) and the callable export.
const size: number | undefined = io.sockets.adapter.rooms.get('room')?.size;
const mine: Set<string> | undefined = io.of('/admin').adapter.sids.get('id');
void size;
void mine;
io.of('/admin').adapter.on('join-room', (room, id) => void `${room}${id}`);
io.sockets.adapter.on('delete-room', (room) => void room.length);
void io.sockets.adapter.serverCount().then((n: number) => n + 1);
const adapterClass: typeof Adapter | ((nsp: Namespace) => unknown) = io.adapter();
void adapterClass;
// A fleet through Redis: each of the official package's call forms.
io.adapter(createAdapter('redis://127.0.0.1:6379', { key: 'app', requestsTimeout: 2000 }));
const fleetIo = new Server({ adapter: createAdapter({ url: 'redis://127.0.0.1:6379', publishOnSpecificResponseChannel: true }) });
void fleetIo;
void createAdapter({} as object, {} as object, { key: 'socket.io' });
io.adapter(createShardedAdapter('redis://127.0.0.1:6379', { channelPrefix: 'app', subscriptionMode: 'dynamic-private' }));
void createShardedAdapter({} as object, {} as object, { subscriptionMode: 'static', requestsTimeout: 1000 });
void createShardedAdapter({ url: 'redis://127.0.0.1:6379' });
// The streams adapter: the official module's one-client form, a URL, options.
const streamsIo = new Server({
  adapter: createStreamsAdapterAsOfficial({} as object, { streamName: 'app', maxLen: 1000, useShardedPubSub: true }),
  connectionStateRecovery: { maxDisconnectionDuration: 60000 },
  auth: { jwt: { secret: 'a secret', algorithms: ['HS256'], audience: ['agents'], from: ['auth', 'cookie'], userRoom: false } },
});
void streamsIo;
const limitedIo = new Server({
  auth: { jwt: { secret: 'a secret' } },
  limits: {
    events: { 'message:new': { points: 30, perSeconds: 60 }, '*': { points: 100, perSeconds: 10 } },
    policy: 'disconnect',
    connectionsPerIp: 20,
    connectionsPerUser: 5,
    connectRatePerIp: { points: 10, perSeconds: 10 },
    idleTimeoutMs: 60000,
  },
  trustProxy: ['loopback', '10.0.0.0/8'],
});
void limitedIo;
void new Engine().channel('/ws/limited', { limits: { events: { '*': { points: 50, perSeconds: 1 } }, policy: 'error' }, trustProxy: 'loopback' });
const limitStats: number = new Engine().stats().limits.rateLimited;
void limitStats;
void createStreamsAdapter('redis://127.0.0.1:6379', { streamCount: 4, sessionKeyPrefix: 'app:session:' });
void createStreamsAdapter({ url: 'redis://127.0.0.1:6379', blockTimeInMs: 1000, readCount: 50 });
const fleetChannel = new Engine().channel('/ws/fleet', { adapter: createAdapter('redis://127.0.0.1:6379') });
const hereNow: number = fleetChannel.count('doc');
const everywhere: Promise<number> = fleetChannel.count(null, { cluster: true });
void hereNow;
void everywhere;
const fleetStats = new Engine().stats().adapter;
if (fleetStats) void (fleetStats.state === 'ready' ? fleetStats.published : fleetStats.dropped);
if (fleetStats && fleetStats.mode === 'streams') void fleetStats.reader;
const io4 = sidewire(httpServer, { cleanupEmptyChildNamespaces: true });
const io5: Server = sidewire();
void io4;
void io5;
io.path('/io');
const p: string = io.path();
void p;
const current = getServer<ClientToServerEvents, ServerToClientEvents>();
current.emit('noArg');
void io.close();

// io.engine: engine.io's Server; io.sidewire: the sidewire Engine.
io.engine.use((req: http.IncomingMessage & { user?: string }, res: http.ServerResponse, next: (err?: Error) => void) => {
  req.user = 'ada';
  next();
});
io.engine.on('connection_error', (err) => void [err.req.url, err.code, err.message, err.context]);
io.engine.on('initial_headers', (headers, req) => {
  headers['x-first'] = req.url || '';
});
io.engine.on('connection', (conn) => conn.on('close', (reason) => void reason));
const clients: number = io.engine.clientsCount;
const pingInterval: number = io.engine.opts.pingInterval;
const engineStats = io.sidewire.stats();
void [clients, pingInterval, engineStats];

// Room history on a channel: bounds, prefixes, the compact and load hooks, and the calls.
const kept = new Engine().channel('/ws/kept', {
  roomQuery: 'doc',
  relay: true,
  history: {
    maxMessages: 500,
    maxBytes: 1 << 20,
    ttlMs: 60_000,
    prefixes: [new Uint8Array([0, 1]), Buffer.from([0, 2])],
    compactAfter: 100,
    compact: async (room: string, messages) => [Buffer.concat(messages.map((m) => (typeof m === 'string' ? Buffer.from(m) : m)))],
    load: (room: string) => (room ? ['saved'] : null),
  },
});
const keptMessages: Array<string | Buffer> = kept.history('doc');
kept.setHistory('doc', keptMessages).clearHistory('doc');
const compactedNow: Promise<boolean> = kept.compactHistory('doc');
const perDocument: Map<string, number> = kept.rooms();
void compactedNow;
void perDocument;
void new Engine().channel('/ws/all', { history: true });

// sidewire's presence on a Server and a namespace.
const presenceIo = new Server();
presenceIo.presence.on('join', (room: string, user: string) => presenceIo.to(room).emit('presence', { room, user, online: true }));
presenceIo.of('/chat').presence.on('leave', (room, user) => void [room, user]);
const here: Array<{ user: string; sockets: number }> = presenceIo.presence.local('chat:1');
const fleetUsers: Promise<Array<{ user: string; sockets: number }>> = presenceIo.presence.users('chat:1');
void here;
void fleetUsers;
void presenceIo.presence.has('chat:1', 'alice');
