package fr.pds.spark.linkage;

import org.apache.spark.sql.api.java.UDF2;

/** Jaro-Winkler similarity of two strings, in [0, 1]: the Jaro similarity raised, when over 0.7,
 *  by 0.1 of what it lacks for each shared leading character (up to 4); null when either is null. Compared by UTF-16 code units, as jellyfish and rapidfuzz do for
 *  the Basic Multilingual Plane. */
public final class JaroWinkler implements UDF2<String, String, Double> {
    private static final long serialVersionUID = 1L;

    @Override
    public Double call(String a, String b) {
        if (a == null || b == null) {
            return null;
        }
        return similarity(a, b);
    }

    public static double jaro(String a, String b) {
        int n = a.length(), m = b.length();
        if (n == 0 && m == 0) {
            return 1.0;
        }
        if (n == 0 || m == 0) {
            return 0.0;
        }
        int window = Math.max(0, Math.max(n, m) / 2 - 1);
        boolean[] usedA = new boolean[n], usedB = new boolean[m];
        int matches = 0;
        for (int i = 0; i < n; i++) {
            int lo = Math.max(0, i - window), hi = Math.min(m - 1, i + window);
            for (int j = lo; j <= hi; j++) {
                if (!usedB[j] && a.charAt(i) == b.charAt(j)) {
                    usedA[i] = true;
                    usedB[j] = true;
                    matches++;
                    break;
                }
            }
        }
        if (matches == 0) {
            return 0.0;
        }
        int k = 0, half = 0;
        for (int i = 0; i < n; i++) {
            if (usedA[i]) {
                while (!usedB[k]) {
                    k++;
                }
                if (a.charAt(i) != b.charAt(k)) {
                    half++;
                }
                k++;
            }
        }
        double t = half / 2, c = matches;  // whole transpositions, as Winkler's strcmp95 counts them
        return (c / n + c / m + (c - t) / c) / 3.0;
    }

    public static double similarity(String a, String b) {
        double j = jaro(a, b);
        if (j <= 0.7) {
            return j;
        }
        int prefix = 0;
        for (int i = 0; i < Math.min(4, Math.min(a.length(), b.length())); i++) {
            if (a.charAt(i) != b.charAt(i)) {
                break;
            }
            prefix++;
        }
        return j + prefix * 0.1 * (1.0 - j);
    }
}
