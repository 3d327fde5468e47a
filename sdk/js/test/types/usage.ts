// Compiled (never run) by test/types.test.js with tsc --strict: the README's uses type-check against index.d.ts.
import {
  type BeatEvent, BadValue, Client, type GraphDescription, RequestTimeout, type Status, UnknownName,
} from '../../src/index.js';

declare function show(...values: unknown[]): void;

async function game(): Promise<void> {
  const music = new Client({ control: 'tcp://127.0.0.1:5555', events: 'tcp://127.0.0.1:5556', name: 'game', timeout: 2 });
  const info = await music.hello();
  const rate: number = info.sampleRate;
  const graph: GraphDescription = await music.describe();
  const names: string[] = graph.parameters.map((p) => p.name);
  await music.loadGraph('examples/action_game/graph.yaml');
  await music.loadGraph({ text: 'cadenza_graph: 1\n', baseDir: '.' });
  music.on('beat', (ev) => { const b: number = ev.beatInBar; return b; });
  music.onBar((ev: BeatEvent) => ev.bar);
  music.on('state', (ev) => ev.phase === 'started');
  const ack = await music.set({ danger: 0.8, mode: 'combat' });
  const when: number | null = ack.streamTime;
  await music.set('danger', 0.5);
  await music.setMany({ danger: 1 }, { ramp: 2, shape: 's-curve', clamp: true });
  await music.trigger('boss_defeated');
  await music.setState('combat');
  await music.setPrompts({ 'dark techno': 1, rain: 0.3 });
  await music.setControls({ bpm: 120, scale: null, notes: [60, 64] });
  await music.clearControls('bpm', 'density');
  await music.pause();
  await music.play();
  const st: Status = await music.status();
  const danger = st.parameters.danger;
  for await (const ev of music.events({ timeout: 1, topics: ['bar'] })) show(ev.topic, ev.streamTime);
  const audio = await music.audio({ format: 'int16' });
  const chunk = await audio.read(1);
  if (chunk !== null) show(chunk.pcm.length, audio.stale);
  audio.close();
  try {
    await music.set({ nope: 1 });
  } catch (err) {
    if (err instanceof UnknownName || err instanceof BadValue) show(err.code, err.field);
    if (err instanceof RequestTimeout) show(err.request, err.timeout);
  }
  show(rate, names, when, danger);
  await music.close();
}

void game;
