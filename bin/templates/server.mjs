// @ts-check
// Next.js, Socket.IO and sidewire's WebSocket engine on one port: `npm run dev`, `npm start`.
// Route handlers emit with getServer() from 'sidewire'. https://github.com/sidewire/sidewire#readme
import { startServer } from 'sidewire/next';
import { createAdapter } from 'sidewire/redis-adapter';

await startServer({
  socketio: process.env.REDIS_URL ? { adapter: createAdapter(process.env.REDIS_URL) } : {},
  setup({ io }) {
    io.on('connection', (socket) => {
      socket.on('join', (room) => socket.join(String(room)));
    });
  },
});
