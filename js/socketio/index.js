'use strict';
// socket.io 4.x server API on sidewire's engine. See docs/socketio.md.
const { Server, getServer } = require('./server.js');
const { Namespace } = require('./namespace.js');
const { Socket } = require('./socket.js');
const { BroadcastOperator, RemoteSocket } = require('./broadcast.js');
const { Adapter } = require('./adapter.js');

module.exports = { Server, Namespace, Socket, BroadcastOperator, RemoteSocket, Adapter, getServer };
