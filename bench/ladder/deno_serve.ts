// The reference: Deno.serve with the same handler.
Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: (a) => console.log(`ready ${a.port}`) },
  () => new Response("Hello, World!"),
);
