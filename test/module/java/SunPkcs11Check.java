// Java 17's SunPKCS11 provider on a PKCS#11 module (ntls's own, or p11-kit-client.so): each
// check runs the operation in the token and compares it with the JDK's software providers
// (SunJCE, SunEC, SunRsaSign). One line per check, "OK <name>" or "FAIL <name>: <why>"; the
// exit status is the number of failures. Run as a source file:
//   java SunPkcs11Check.java <sunpkcs11.cfg> <PIN> <check>...
// Checks: aes-gcm aes-cbc aes-ecb ecdh ecdsa rsa-pss
import java.security.*;
import java.security.spec.*;
import java.util.*;
import javax.crypto.*;
import javax.crypto.spec.*;

public class SunPkcs11Check {
  static Provider token;
  static final SecureRandom random = new SecureRandom();
  static int failures = 0;

  interface Check { void run() throws Exception; }

  public static void main(String[] args) throws Exception {
    token = Security.getProvider("SunPKCS11").configure(args[0]);
    Security.addProvider(token);
    KeyStore store = KeyStore.getInstance("PKCS11", token);
    store.load(null, args[1].toCharArray());
    Map<String, Check> checks = new LinkedHashMap<>();
    checks.put("aes-gcm", SunPkcs11Check::aesGcm);
    checks.put("aes-cbc", SunPkcs11Check::aesCbc);
    checks.put("aes-ecb", SunPkcs11Check::aesEcb);
    checks.put("ecdh", SunPkcs11Check::ecdh);
    checks.put("ecdsa", SunPkcs11Check::ecdsa);
    checks.put("rsa-pss", SunPkcs11Check::rsaPss);
    for (int i = 2; i < args.length; i++) {
      Check check = checks.get(args[i]);
      if (check == null) throw new IllegalArgumentException("no check " + args[i]);
      try {
        check.run();
        System.out.println("OK " + args[i]);
      } catch (Throwable e) {
        failures++;
        System.out.println("FAIL " + args[i] + ": " + e);
        e.printStackTrace(System.out);
      }
    }
    System.exit(failures);
  }

  static byte[] bytes(int n) {
    byte[] b = new byte[n];
    random.nextBytes(b);
    return b;
  }

  static void same(String what, byte[] expected, byte[] actual) {
    if (!Arrays.equals(expected, actual)) throw new AssertionError(what + ": token and software differ");
  }

  /** Encrypts and decrypts with the token, twice, each compared with SunJCE. */
  static void cipherPair(String transformation, SecretKey key, AlgorithmParameterSpec params, byte[] aad, int length) throws Exception {
    for (int round = 0; round < 2; round++) {
      byte[] plain = bytes(length);
      Cipher soft = Cipher.getInstance(transformation, "SunJCE");
      Cipher hard = Cipher.getInstance(transformation, token);
      soft.init(Cipher.ENCRYPT_MODE, key, params);
      hard.init(Cipher.ENCRYPT_MODE, key, params);
      if (aad != null) {
        soft.updateAAD(aad);
        hard.updateAAD(aad);
      }
      byte[] expected = soft.doFinal(plain);
      same(transformation + " encrypt", expected, hard.doFinal(plain));
      hard.init(Cipher.DECRYPT_MODE, key, params);
      if (aad != null) hard.updateAAD(aad);
      same(transformation + " decrypt", plain, hard.doFinal(expected));
      // Multi-part: update in uneven pieces, then doFinal.
      if (aad == null) {
        hard.init(Cipher.ENCRYPT_MODE, key, params);
        byte[] first = hard.update(plain, 0, 5);
        byte[] rest = hard.doFinal(plain, 5, plain.length - 5);
        byte[] joined = new byte[(first == null ? 0 : first.length) + rest.length];
        if (first != null) System.arraycopy(first, 0, joined, 0, first.length);
        System.arraycopy(rest, 0, joined, joined.length - rest.length, rest.length);
        same(transformation + " multi-part encrypt", expected, joined);
      }
    }
  }

  static void aesGcm() throws Exception {
    SecretKey key = new SecretKeySpec(bytes(32), "AES");
    byte[] iv = bytes(12);
    byte[] aad = bytes(20);
    cipherPair("AES/GCM/NoPadding", key, new GCMParameterSpec(128, iv), aad, 100);
    // A changed ciphertext is refused (AEADBadTagException).
    Cipher hard = Cipher.getInstance("AES/GCM/NoPadding", token);
    hard.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, iv));
    byte[] sealed = hard.doFinal(bytes(40));
    sealed[3] ^= 1;
    hard.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, iv));
    try {
      hard.doFinal(sealed);
      throw new AssertionError("a changed GCM ciphertext was accepted");
    } catch (AEADBadTagException expected) {
      // refused, as it must be
    }
  }

  static void aesCbc() throws Exception {
    SecretKey key = new SecretKeySpec(bytes(32), "AES");
    IvParameterSpec iv = new IvParameterSpec(bytes(16));
    cipherPair("AES/CBC/NoPadding", key, iv, null, 64);
    cipherPair("AES/CBC/PKCS5Padding", key, iv, null, 61);
  }

  static void aesEcb() throws Exception {
    SecretKey key = new SecretKeySpec(bytes(16), "AES");
    cipherPair("AES/ECB/NoPadding", key, null, null, 64);
    cipherPair("AES/ECB/PKCS5Padding", key, null, null, 37);
  }

  static KeyPair tokenEcKeyPair() throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC", token);
    generator.initialize(new ECGenParameterSpec("secp256r1"));
    return generator.generateKeyPair();
  }

  /** The token's public key as the JDK's own (X.509 encoding in, SunEC / SunRsaSign key out). */
  static PublicKey software(PublicKey key, String algorithm) throws Exception {
    return KeyFactory.getInstance(algorithm).generatePublic(new X509EncodedKeySpec(key.getEncoded()));
  }

  static void ecdh() throws Exception {
    KeyPair mine = tokenEcKeyPair();
    KeyPairGenerator peerGenerator = KeyPairGenerator.getInstance("EC", "SunEC");
    peerGenerator.initialize(new ECGenParameterSpec("secp256r1"));
    KeyPair peer = peerGenerator.generateKeyPair();
    KeyAgreement hard = KeyAgreement.getInstance("ECDH", token);
    hard.init(mine.getPrivate());
    hard.doPhase(peer.getPublic(), true);
    KeyAgreement soft = KeyAgreement.getInstance("ECDH", "SunEC");
    soft.init(peer.getPrivate());
    soft.doPhase(software(mine.getPublic(), "EC"), true);
    same("ECDH secret", soft.generateSecret(), hard.generateSecret());
  }

  static void ecdsa() throws Exception {
    KeyPair pair = tokenEcKeyPair();
    byte[] message = bytes(1000);
    Signature hard = Signature.getInstance("SHA256withECDSA", token);
    hard.initSign(pair.getPrivate());
    hard.update(message);
    byte[] signature = hard.sign();
    Signature soft = Signature.getInstance("SHA256withECDSA", "SunEC");
    soft.initVerify(software(pair.getPublic(), "EC"));
    soft.update(message);
    if (!soft.verify(signature)) throw new AssertionError("SunEC does not verify the token's SHA256withECDSA signature");
    hard.initVerify(pair.getPublic());
    hard.update(message);
    if (!hard.verify(signature)) throw new AssertionError("the token does not verify its own signature");
  }

  static void rsaPss() throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA", token);
    generator.initialize(2048);
    KeyPair pair = generator.generateKeyPair();
    PSSParameterSpec pss = new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1);
    byte[] message = bytes(500);
    for (String algorithm : new String[] {"RSASSA-PSS", "SHA256withRSASSA-PSS"}) {
      Signature hard = Signature.getInstance(algorithm, token);
      if (algorithm.equals("RSASSA-PSS")) hard.setParameter(pss);
      hard.initSign(pair.getPrivate());
      hard.update(message);
      byte[] signature = hard.sign();
      Signature soft = Signature.getInstance("RSASSA-PSS", "SunRsaSign");
      soft.setParameter(pss);
      soft.initVerify(software(pair.getPublic(), "RSA"));
      soft.update(message);
      if (!soft.verify(signature)) throw new AssertionError("SunRsaSign does not verify the token's " + algorithm + " signature");
    }
  }
}
