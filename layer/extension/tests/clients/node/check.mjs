// Unmodified @google-cloud/storage behind the crossfed extension: detection, list, read,
// ID token. Prints one JSON line. Usage: node check.mjs BUCKET OBJECT AUDIENCE
import {Storage} from '@google-cloud/storage';

const [bucket, object, audience] = process.argv.slice(2);
const storage = new Storage({
  apiEndpoint: process.env.TEST_STORAGE_ENDPOINT,
  // Keep authentication on with a custom endpoint (otherwise it is anonymous).
  useAuthWithCustomEndpoint: true,
});
const [buckets] = await storage.getBuckets();
const [data] = await storage.bucket(bucket).file(object).download();
const client = await storage.authClient.getClient();
const {token} = await client.getAccessToken();
const idClient = await storage.authClient.getIdTokenClient(audience);
const idToken = await idClient.idTokenProvider.fetchIdToken(audience);
console.log(JSON.stringify({
  client: client.constructor.name,
  project: await storage.authClient.getProjectId(),
  buckets: buckets.map((b) => b.name).sort(),
  object: data.toString(),
  token,
  id_token: idToken,
}));
